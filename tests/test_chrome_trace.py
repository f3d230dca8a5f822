"""export_chrome_trace: Trace Event Format JSON that Perfetto and chrome://tracing open.

``validate_trace_events`` checks a file against the format (the event types we
write: complete "X", metadata "M", counter "C"): required fields and their types,
non-negative times, and on every lane (pid, tid) events that either do not overlap
or nest properly (a child inside its parent), as the viewers require.
"""
import json

import pytest

import minitransformer as mt
from minitransformer import analysis
from minitransformer.trace import trace

NUMBER = (int, float)
REQUIRED = {
    "X": {"name": str, "ph": str, "ts": NUMBER, "dur": NUMBER, "pid": int, "tid": int},
    "M": {"name": str, "ph": str, "pid": int, "args": dict},
    "C": {"name": str, "ph": str, "ts": NUMBER, "pid": int, "args": dict},
}


def _nanoseconds(microseconds):
    # Times are written in µs with 1 ns resolution: compare them on that grid, exactly.
    return round(microseconds * 1000)


def validate_trace_events(data):
    """Assert that ``data`` (a loaded JSON file) is valid Trace Event Format; return
    the complete events grouped by lane, ``{(pid, tid): [event, ...]}``."""
    assert isinstance(data, dict) and isinstance(data.get("traceEvents"), list), \
        "a JSON object with a 'traceEvents' list"
    lanes = {}
    for event in data["traceEvents"]:
        assert event.get("ph") in REQUIRED, f"unknown phase in {event}"
        for field, kind in REQUIRED[event["ph"]].items():
            value = event.get(field)
            assert isinstance(value, kind) and not isinstance(value, bool), \
                f"field {field!r} of {event} should be {kind}"
        if event["ph"] == "M":
            assert event["name"] in ("process_name", "thread_name", "process_sort_index",
                                     "thread_sort_index"), event
            assert isinstance(event["args"].get("name"), str), event
        elif event["ph"] == "C":
            assert event["ts"] >= 0 and event["args"], event
            assert all(isinstance(v, NUMBER) for v in event["args"].values()), event
        else:
            assert event["ts"] >= 0 and event["dur"] >= 0, f"negative time in {event}"
            lanes.setdefault((event["pid"], event["tid"]), []).append(event)
    for lane, events in lanes.items():
        open_ends = []      # ends of the events enclosing the current one
        for event in sorted(events, key=lambda e: (_nanoseconds(e["ts"]), -_nanoseconds(e["dur"]))):
            start = _nanoseconds(event["ts"])
            end = start + _nanoseconds(event["dur"])
            while open_ends and open_ends[-1] <= start:
                open_ends.pop()
            assert not open_ends or end <= open_ends[-1], \
                f"on lane {lane}, {event} overlaps an event without nesting inside it"
            open_ends.append(end)
    return lanes


def _traced_step(layer, n, d=8):
    mt.manual_seed(0)
    if layer == "lstm":
        module = mt.nn.LSTM(d, d, batch_first=True)
        run = lambda x: module(x)[0]                                   # noqa: E731
    else:
        module = mt.nn.MultiheadAttention(d, 2, batch_first=True)
        run = lambda x: module(x, x, x, need_weights=False)[0]         # noqa: E731
    x = mt.randn(1, n, d)
    with trace() as t:
        (run(x) ** 2).mean().backward()
    return t


@pytest.fixture(scope="module", autouse=True)
def _nn():
    pytest.importorskip("minitransformer.nn")


def _export(t, tmp_path):
    path = t.export_chrome_trace(tmp_path / "trace.json")
    with open(path) as f:
        return json.load(f)


@pytest.mark.parametrize("layer", ["lstm", "attention"])
def test_the_file_is_valid_trace_event_format_with_both_views(tmp_path, layer):
    t = _traced_step(layer, 5)
    data = _export(t, tmp_path)
    lanes = validate_trace_events(data)
    measured = [e for (pid, _), events in lanes.items() if pid == 1 for e in events]
    ideal = [e for (pid, _), events in lanes.items() if pid == 2 for e in events]
    ops = [e for e in measured if e["cat"] != "phase"]
    assert len(ops) == len(ideal) == len(t.nodes)
    assert {e["cat"] for e in ops} == {"forward", "backward"}
    # Every op sits inside the "forward" or "backward" event of its phase.
    phases = [e for e in measured if e["cat"] == "phase"]
    assert [p["name"] for p in phases] == ["forward", "backward"]
    for op in ops:
        (phase,) = [p for p in phases if p["name"] == op["cat"]]
        assert phase["ts"] <= op["ts"] and op["ts"] + op["dur"] <= phase["ts"] + phase["dur"] + 1e-3
    # The measured ops keep their recorded order and durations (to the ns).
    for op, node in zip(ops, t.nodes):
        assert op["args"]["index"] == node.index
        assert abs(op["dur"] - node.time * 1e6) <= 2e-3
    names = {e["args"]["name"] for e in data["traceEvents"] if e["ph"] == "M"}
    assert any("measured" in n for n in names) and any("ideal" in n for n in names)


def test_the_ideal_schedule_puts_each_op_at_its_earliest_step(tmp_path):
    t = _traced_step("lstm", 4)
    data = _export(t, tmp_path)
    ideal = {e["args"]["index"]: e for e in data["traceEvents"]
             if e["ph"] == "X" and e["pid"] == 2}
    by_id = {n.id: n for n in t.nodes}
    for node in t.nodes:
        event = ideal[node.index]
        waits_for = list(node.deps) + ([node.forward_node] if node.forward_node else [])
        finishes = [ideal[by_id[d].index]["ts"] + ideal[by_id[d].index]["dur"]
                    for d in waits_for if d in by_id]
        assert event["ts"] == max(finishes, default=0)
        assert event["dur"] == node.steps
    # As few lanes as ops running at once at the busiest step.
    events = list(ideal.values())
    busiest = max(sum(e["ts"] <= step < e["ts"] + e["dur"] for e in events)
                  for step in {e["ts"] for e in events})
    assert len({e["tid"] for e in events}) == busiest
    # The schedule is as long as the span with forward and backward together.
    assert max(e["ts"] + e["dur"] for e in events) == t.summary("all")["span_steps"]


def _length_and_width(data):
    """(steps, average processors busy) of the ideal schedule in an exported file."""
    ideal = [e for e in data["traceEvents"] if e["ph"] == "X" and e["pid"] == 2]
    length = max(e["ts"] + e["dur"] for e in ideal)
    counter = sorted((e["ts"], e["args"]["processors"]) for e in data["traceEvents"]
                     if e["ph"] == "C")
    area = sum(busy * (next_ts - ts) for (ts, busy), (next_ts, _) in zip(counter, counter[1:]))
    return length, area / length


def test_lstm_is_a_long_thin_chain_attention_a_short_wide_block(tmp_path):
    shape = {(layer, n): _length_and_width(_export(_traced_step(layer, n), tmp_path))
             for layer in ("lstm", "attention") for n in (8, 32)}
    (lstm_short, lstm_thin), (lstm_long, lstm_still_thin) = shape["lstm", 8], shape["lstm", 32]
    (attention_short, attention_wide), (attention_long, attention_wider) = (
        shape["attention", 8], shape["attention", 32])
    # Four times the tokens: the LSTM's chain is about four times longer, no wider ...
    assert lstm_long > 3.5 * lstm_short and lstm_still_thin < 1.5 * lstm_thin
    # ... attention's block hardly longer, but much wider.
    assert attention_long < 1.5 * attention_short and attention_wider > 4 * attention_wide
    assert attention_long < lstm_long / 4 and attention_wider > 5 * lstm_still_thin


def test_the_validator_rejects_what_the_viewers_cannot_show():
    good = {"name": "a", "ph": "X", "ts": 0.0, "dur": 5.0, "pid": 1, "tid": 1}
    validate_trace_events({"traceEvents": [good, dict(good, ts=1.0, dur=2.0)]})   # nested
    validate_trace_events({"traceEvents": [good, dict(good, ts=5.0)]})             # touching
    with pytest.raises(AssertionError, match="overlaps"):
        validate_trace_events({"traceEvents": [good, dict(good, ts=3.0, dur=5.0)]})
    with pytest.raises(AssertionError, match="negative"):
        validate_trace_events({"traceEvents": [dict(good, dur=-1.0)]})
    with pytest.raises(AssertionError, match="'dur'"):
        validate_trace_events({"traceEvents": [{k: v for k, v in good.items() if k != "dur"}]})
    with pytest.raises(AssertionError, match="traceEvents"):
        validate_trace_events([good])
    # The same overlap on another lane is fine.
    validate_trace_events({"traceEvents": [good, dict(good, ts=3.0, tid=2)]})


def test_export_of_an_empty_trace_is_valid(tmp_path):
    with trace() as t:
        pass
    lanes = validate_trace_events(_export(t, tmp_path))
    assert lanes == {}
    assert analysis.chrome_trace_events([])[0]["ph"] == "M"
