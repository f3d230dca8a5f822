"""Pictures of traced graphs: the SVG and DOT say exactly what the trace says."""
import re
import xml.etree.ElementTree as ET

import pytest

from minitransformer import analysis, graph_picture
from minitransformer.trace import trace

from .test_trace import attention_forward, rnn_forward, traced

SVG = "{http://www.w3.org/2000/svg}"


def elements_of_class(svg_text, name):
    """The elements whose class attribute holds ``name`` (e.g. "op", "critical")."""
    root = ET.fromstring(svg_text)
    return [e for e in root.iter() if name in e.get("class", "").split()]


def dependence_count(t, phase):
    nodes = analysis.select(t.nodes, phase)
    present = {n.id for n in nodes}
    return sum(len(analysis._predecessors(n, phase, present)) for n in nodes)


@pytest.fixture(scope="module")
def layers():
    return {n: graph_picture.trace_lstm_and_attention(n) for n in (3, 6)}


def test_the_svg_is_xml_with_an_svg_root(layers):
    lstm, _ = layers[3]
    root = ET.fromstring(lstm.to_svg())
    assert root.tag == SVG + "svg"


@pytest.mark.parametrize("which", [0, 1], ids=["lstm", "attention"])
def test_one_box_per_op_and_one_bold_box_per_sequential_op(layers, which):
    t = layers[3][which]
    svg = t.to_svg()
    boxes = [e for e in elements_of_class(svg, "op") if e.tag == SVG + "g"]
    assert len(boxes) == len(t.forward_nodes())
    critical = [e for e in boxes if "critical" in e.get("class").split()]
    assert len(critical) == t.summary("forward")["sequential_ops"]
    edges = elements_of_class(svg, "dep")
    assert len(edges) == dependence_count(t, "forward")


@pytest.mark.parametrize("phase", ["forward", "backward", "all"])
def test_every_phase_can_be_drawn(phase):
    t, _ = traced(rnn_forward, 4, backward=True)
    svg = t.to_svg(phase=phase)
    assert len(elements_of_class(svg, "op")) == len(analysis.select(t.nodes, phase))
    bold = [e for e in elements_of_class(svg, "op") if "critical" in e.get("class").split()]
    assert len(bold) == t.summary(phase)["sequential_ops"]
    assert len(elements_of_class(svg, "dep")) == dependence_count(t, phase)


def test_to_svg_writes_the_file_it_returns(tmp_path):
    t, _ = traced(attention_forward, 4)
    path = tmp_path / "attention.svg"
    text = t.to_svg(path)
    assert path.read_text(encoding="utf-8") == text


def test_the_dot_text_names_every_op_once():
    t, _ = traced(rnn_forward, 4)
    dot = t.to_dot()
    assert dot.startswith("digraph") and dot.count("{") == dot.count("}")
    declared = re.findall(r"^  (op\d+) \[label=", dot, re.M)
    assert sorted(declared) == sorted(f"op{n.index}" for n in t.forward_nodes())
    assert len(re.findall(r"^  op\d+ -> op\d+", dot, re.M)) == dependence_count(t, "forward")


def test_the_pictures_are_deterministic():
    first = graph_picture.lstm_beside_attention_svg(n=4)
    assert first == graph_picture.lstm_beside_attention_svg(n=4)
    t1, _ = traced(attention_forward, 4)
    t2, _ = traced(attention_forward, 4)
    assert t1.to_svg() == t2.to_svg() and t1.to_dot() == t2.to_dot()


def test_the_lstm_path_grows_with_n_and_attention_stays(layers):
    def bold_boxes(t):
        return len([e for e in elements_of_class(t.to_svg(), "op")
                    if "critical" in e.get("class").split()])
    (lstm3, attention3), (lstm6, attention6) = layers[3], layers[6]
    assert bold_boxes(lstm6) > bold_boxes(lstm3)
    assert bold_boxes(attention6) == bold_boxes(attention3)


def test_the_front_page_picture_has_both_captions():
    svg = graph_picture.lstm_beside_attention_svg(n=5)
    lstm, attention = graph_picture.trace_lstm_and_attention(5)
    captions = [e.text for e in elements_of_class(svg, "caption")]
    assert captions == [
        f"LSTM: {lstm.summary()['sequential_ops']} sequential ops for 5 tokens",
        f"attention: {attention.summary()['sequential_ops']} sequential ops"]
    boxes = [e for e in elements_of_class(svg, "op") if e.tag == SVG + "g"]
    assert len(boxes) == len(lstm) + len(attention)


def test_large_graphs_get_small_boxes():
    t, _ = traced(rnn_forward, 120)
    assert len(t.forward_nodes()) > graph_picture.SMALL_ABOVE_OPS
    svg = t.to_svg()
    assert len(elements_of_class(svg, "op")) == len(t.forward_nodes())
    rect = ET.fromstring(svg).find(f".//{SVG}g[@class]/{SVG}rect")
    assert int(rect.get("width")) == graph_picture.SMALL["width"]


def test_the_command_line_writes_the_picture(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "picture.svg"
    subprocess.run([sys.executable, "-m", "minitransformer.graph_picture", str(out)], check=True,
                   capture_output=True)
    assert out.read_text(encoding="utf-8") == graph_picture.lstm_beside_attention_svg()
