"""Bench: the intent classifier on the labelled corpora, each printed separately.

``tests/wechat/intent_corpus.tsv`` is the corpus the vocabulary was written against;
``tests/wechat/intent_heldout.tsv`` was written afterwards by someone who had not run the
classifier on it (different phrasings, typos, dialect, mixed punctuation) — its figure is the
honest one. For each: accuracy per class and overall, every misclassified utterance, and
whether every emergency was recognised. By default the shipped vocabulary
(app/reference/intent_rules.py, what the migrations install) with INDOOR_TEMP_STANDARD from the
configuration; ``--database`` uses the rows of the configured database instead (DATABASE_URL,
or the demo's instance/heating.db), i.e. the vocabulary as staff edited it.

    .venv/bin/python bench/intents/run.py [--database] [--corpus PATH ...]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.models import Intent  # noqa: E402
from app.reference import intent_rules  # noqa: E402
from app.config import load_config  # noqa: E402
from app.services import intents  # noqa: E402
from bench.lifecycle import stops_what_it_starts  # noqa: E402

CORPUS = ROOT / "tests" / "wechat" / "intent_corpus.tsv"
HELDOUT = ROOT / "tests" / "wechat" / "intent_heldout.tsv"
HELDOUT_3 = ROOT / "bench" / "intents" / "heldout_3.tsv"   # the one not yet tuned on (2026-12-02)


def load_corpus(path: Path) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, text = line.split("\t", 1)
            rows.append((label.strip(), text))
    return rows


def _database_rules() -> intents._Rules:
    from app import create_app

    # create_app starts the instance's embedded Redis unless one runs (make run's): stop ours.
    with stops_what_it_starts(load_config().REDIS_EMBEDDED_SOCKET):
        app = create_app()
        with app.app_context():
            return intents._rules()


def measure(rules: intents._Rules, path: Path) -> bool:
    """Print one corpus's figures; True when every emergency in it was recognised."""
    corpus = load_corpus(path)
    started = time.perf_counter()
    results = [(label, text, rules.classify(text)) for label, text in corpus]
    elapsed = time.perf_counter() - started

    total, right = Counter(), Counter()
    wrong = []
    for label, text, found in results:
        total[label] += 1
        if found.intent == label:
            right[label] += 1
        else:
            wrong.append((label, found.intent, text, found.scores))
    print(f"corpus: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}, "
          f"{len(corpus)} utterances, {len(wrong)} misclassified; "
          f"{elapsed * 1000 / max(len(corpus), 1):.2f} ms per utterance (rules compiled, jieba loaded)")
    print(f"{'class':<10} {'n':>4} {'right':>6} {'accuracy':>9}")
    for label in (*Intent.ALL, Intent.UNKNOWN):
        if total[label]:
            print(f"{label:<10} {total[label]:>4} {right[label]:>6} {right[label] / total[label]:>8.1%}")
    overall = sum(right.values()) / max(sum(total.values()), 1)
    print(f"{'overall':<10} {sum(total.values()):>4} {sum(right.values()):>6} {overall:>8.1%}")
    missed = [w for w in wrong if w[0] == Intent.EMERGENCY]
    print(f"emergencies recognised: {right[Intent.EMERGENCY]}/{total[Intent.EMERGENCY]}"
          + ("" if not missed else "  ← MISSED EMERGENCIES"))
    if wrong:
        print("\nmisclassified (expected → got: text  scores):")
        for label, got, text, scores in wrong:
            shown = " ".join(f"{k}={v}" for k, v in sorted(scores.items(), key=lambda kv: -kv[1]))
            print(f"  {label} → {got}: {text}   [{shown}]")
    return not missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", action="store_true", help="use the vocabulary in the configured database")
    parser.add_argument("--corpus", type=Path, nargs="+", default=[CORPUS, HELDOUT, HELDOUT_3])
    args = parser.parse_args()
    rules = _database_rules() if args.database else intents._Rules(
        list(intent_rules.rows()), indoor_standard=load_config().INDOOR_TEMP_STANDARD)
    rules.classify("你好")  # jieba's dictionary loads once, outside the timing
    every_emergency = True
    for i, path in enumerate(args.corpus):
        if i:
            print("\n" + "-" * 72 + "\n")
        every_emergency &= measure(rules, path)
    return 0 if every_emergency else 1


if __name__ == "__main__":
    sys.exit(main())
