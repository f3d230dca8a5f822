"""A new user's path through real data, end to end, on a fresh checkout: download the corpus
(from a loopback server that serves gzip files this test writes), train German -> English on
its official splits, evaluate on the test file and write the translations; the BLEU printed
is the one sacrebleu computes from that file. The network is never touched."""
import functools
import gzip
import hashlib
import http.server
import re
import threading

import pytest

from minitransformer.cli import main
from minitransformer.translation import download
from minitransformer.translation.grammar import generate_pairs


def serve(folder):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.mark.slow
def test_download_train_evaluate(tmp_path, monkeypatch, capsys):
    pairs = [(en.capitalize(), de.capitalize())
             for en, de in dict.fromkeys(generate_pairs(300, seed=11))]
    splits = {"train": pairs[:200], "val": pairs[200:220], "test_2016_flickr": pairs[220:250]}
    site = tmp_path / "site"
    site.mkdir()
    raw_sums, tsv_sums = {}, {}
    for split, part in splits.items():
        for column, language in enumerate(("en", "de")):
            data = gzip.compress("".join(p[column] + "\n" for p in part).encode(), mtime=0)
            (site / f"{split}.{language}.gz").write_bytes(data)
            raw_sums[f"{split}.{language}.gz"] = hashlib.sha256(data).hexdigest()
        tsv = "".join(f"{en}\t{de}\n" for en, de in part).encode()
        tsv_sums["test2016.tsv" if split.startswith("test") else f"{split}.tsv"] = \
            hashlib.sha256(tsv).hexdigest()
    # The real checksums cannot match made-up files: the command checks against these.
    monkeypatch.setattr(download, "run", functools.partial(download.run, raw_sha256=raw_sums,
                                                           tsv_sha256=tsv_sums))
    server = serve(site)
    try:
        data_dir = tmp_path / "data" / "multi30k"
        main(["data", "multi30k", "--dir", str(data_dir),
              "--base-url", f"http://127.0.0.1:{server.server_address[1]}/"])
    finally:
        server.shutdown()
        server.server_close()
    files = {name: str(data_dir / f"{name}.tsv") for name in ("train", "val", "test2016")}
    checkpoint = str(tmp_path / "run")
    main(["train", "--data", files["train"], "--valid", files["val"], "--test",
          files["test2016"], "--reverse", "--vocab-size", "500", "--epochs", "3",
          "--checkpoint", checkpoint, "--log-every", "0"])
    assert "test BLEU (30 sentences, greedy)" in capsys.readouterr().out

    hyps = tmp_path / "hyps.txt"
    main(["evaluate", "--checkpoint", checkpoint, "--data", files["test2016"],
          "--output", str(hyps)])
    out = capsys.readouterr().out
    printed = {case: float(score) for score, case in
               re.findall(r"BLEU\s+([\d.]+)\s+\S*case:(\w+)", out)}
    hypotheses = hyps.read_text(encoding="utf-8").split("\n")[:-1]
    references = [en for en, _ in splits["test_2016_flickr"]]   # German -> English
    assert len(hypotheses) == 30
    sacrebleu = pytest.importorskip("sacrebleu")
    assert printed["mixed"] == pytest.approx(
        sacrebleu.corpus_bleu(hypotheses, [references]).score, abs=0.01)
    assert printed["lc"] == pytest.approx(
        sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score, abs=0.01)
