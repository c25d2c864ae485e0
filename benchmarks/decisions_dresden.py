"""Defensible decisions on dresden-nikon: three answers, and rankings that count the search.

1. The case workflow (enroll each camera from its 10 flats, scan the 16 natural images):
   top-1 by the ranking of the false-alarm probability, wrong matches, the answers, the
   "highest" device of files that matched none (by p_fa, not raw PCE), and the separation
   of true and wrong pairs as PCE and as log₁₀ p_fa.
2. Every pair of natural images (120), as `verify A B` compares them (one file is the
   reference): same-unit pairs must answer match or inconclusive, never "no match"; pairs
   of different cameras must never answer match.
3. Contamination: Nikon_D70_0 enrolled from its 10 flats plus one Nikon_D70s_0 flat added by
   mistake: the stray flat must be refused, and the D70s naturals must not match D70_0; with
   --force it is kept (flagged), and the figures say what that costs.

    .venv/bin/python benchmarks/decisions_dresden.py [--data ../shared/data] [--workers 2] [--scene-alpha A]

--scene-alpha: attenuate the strong components of every residual (Li, TIFS 2010;
`SignalOptions.scene_alpha`), references and queries alike.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from sensorprint.prnu.cluster import pair_score
from sensorprint.prnu.decision import ALIGNED_POSITIONS, ONE_MEDIUM
from sensorprint.results import Decision
from sensorprint.store import Case
from sensorprint.workflow import enroll, file_results, scan
from sensorprint.workflow.enroll import REFERENCE_OPTIONS
from sensorprint.workflow.options import ScanOptions, SignalOptions
from sensorprint.workflow.signals import query_signal

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def device_of(path: Path | str) -> str:
    return Path(path).stem.rsplit("_", 1)[0]


def options_for(scene_alpha: float | None) -> tuple[SignalOptions, ScanOptions]:
    """enroll's and scan's default options, with the scene suppression asked for."""
    return replace(REFERENCE_OPTIONS, scene_alpha=scene_alpha), ScanOptions(
        signal=SignalOptions(scene_alpha=scene_alpha)
    )


def case_figures(root: Path, workers: int, scene_alpha: float | None = None) -> dict:
    """Enroll the flats, scan the naturals, and measure the decisions the case gives."""
    flats = collections.defaultdict(list)
    for path in sorted((root / "flat").iterdir()):
        flats[device_of(path)].append(path)
    with tempfile.TemporaryDirectory() as tmp:
        case = Case.create(Path(tmp) / "case")
        references, queries = options_for(scene_alpha)
        enrolled = [
            enroll(case, device, paths, workers=workers, options=references) for device, paths in sorted(flats.items())
        ]
        scan(case, [root / "natural"], workers=workers, options=queries)
        results = [result for result, _ in file_results(case)]
        case.close()
    checks = [enroll_summary.check for enroll_summary in enrolled]
    answers, top1, wrong_matches, highest_by_pfa_differs = collections.Counter(), 0, 0, 0
    true_pce, wrong_pce, true_logp, wrong_logp = [], [], [], []
    for result in results:
        truth = device_of(result.path)
        top1 += result.best_device == truth
        for device, m in result.prnu().items():
            answers[str(m.decision)] += 1
            (true_pce if device == truth else wrong_pce).append(m.score)
            (true_logp if device == truth else wrong_logp).append(m.evidence.log10_p_fa or 0.0)
            wrong_matches += device != truth and m.decision == Decision.MATCH
        if result.best_device is None:
            rows = result.prnu().values()
            by_pce = max(rows, key=lambda m: m.score).target
            by_pfa = min(rows, key=lambda m: m.evidence.log10_p_fa or 0.0).target
            highest_by_pfa_differs += by_pce != by_pfa
        print(f"{Path(result.path).name:28s} truth {truth:14s} answer {result.verdict.prnu}")
    fits = [s.score for check in checks for s in check.scores if s.score is not None]
    return {
        "refused": sum(len(check.misfits) for check in checks),
        "min_reference_fit": min(fits),
        "similar_pairs": sorted({tuple(sorted((c.device, name))) for c in checks for name, _ in c.similar}),
        "queries": len(results),
        "top1": top1,
        "wrong_matches": wrong_matches,
        "answers": dict(answers),
        "unmatched_highest_changed_by_pfa": highest_by_pfa_differs,
        "separation_pce": min(true_pce) / max(wrong_pce),
        "max_true_log10_pfa": max(true_logp),
        "min_wrong_log10_pfa": min(wrong_logp),
    }


def pair_figures(root: Path, scene_alpha: float | None = None) -> dict:
    """Every pair of natural images compared as `verify A B` compares two files."""
    signals = {}
    for path in sorted((root / "natural").iterdir()):
        _, signals[path.name] = query_signal(path, options_for(scene_alpha)[1].signal)
    same, different = collections.Counter(), collections.Counter()
    wrong_pces, aligned_wrong = [], []  # aligned: the same-size pairs, one position (no search)
    for a, b in itertools.combinations(sorted(signals), 2):
        found = pair_score(signals[a], signals[b], strength=ONE_MEDIUM)
        if device_of(a) == device_of(b):
            same[str(found.decision)] += 1
        else:
            different[str(found.decision)] += 1
            wrong_pces.append(found.score)
            if found.evidence.n_positions <= ALIGNED_POSITIONS:
                aligned_wrong.append(found.score)
    return {
        "same_unit": dict(same),
        "different": dict(different),
        "max_wrong_pair_pce": max(wrong_pces),
        "aligned_wrong_pairs": len(aligned_wrong),
        "aligned_wrong_pce_p95": float(np.percentile(aligned_wrong, 95)),  # under the null (chi-square, 1 dof): 3.8
    }


def contamination_figures(root: Path, workers: int, scene_alpha: float | None = None) -> dict:
    """Nikon_D70_0's flats plus one stray Nikon_D70s_0 flat: refused by default, kept with force."""
    refs = sorted((root / "flat").glob("Nikon_D70_0_*")) + sorted((root / "flat").glob("Nikon_D70s_0_*"))[:1]
    queries = sorted((root / "natural").glob("Nikon_D70s_0_*"))
    figures = {}
    for force in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            case = Case.create(Path(tmp) / "case")
            references, options = options_for(scene_alpha)
            summary = enroll(case, "Nikon_D70_0", refs, workers=workers, force=force, options=references)
            scan(case, queries, workers=workers, options=options)
            results = [result for result, _ in file_results(case)]
            case.close()
        stray = {s.path: s.score for s in summary.check.scores}[str(refs[-1])]
        figures["forced" if force else "default"] = {
            "stray_fit": stray,
            "refused": len(summary.refused),
            "false_matches": sum(r.best_device is not None for r in results),
            "max_pce": max(m.score for r in results for m in r.prnu().values()),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scene-alpha", type=float, default=None)
    args = parser.parse_args()
    root = args.data.resolve() / "dresden-nikon"  # as the case records paths (resolved), e.g. via a link
    started = time.perf_counter()
    case = case_figures(root, args.workers, args.scene_alpha)
    print(case)
    pairs = pair_figures(root, args.scene_alpha)
    print(pairs)
    stray = contamination_figures(root, args.workers, args.scene_alpha)
    print(stray)
    answers = case["answers"]
    print(
        f"benchmark=decisions_dresden queries={case['queries']} top1={case['top1']} "
        f"wrong_matches={case['wrong_matches']} match={answers.get('match', 0)} "
        f"no_match={answers.get('no match', 0)} inconclusive={answers.get('inconclusive', 0)} "
        f"unmatched_highest_changed_by_pfa={case['unmatched_highest_changed_by_pfa']} "
        f"separation_pce={case['separation_pce']:.2f} max_true_log10_pfa={case['max_true_log10_pfa']:.1f} "
        f"min_wrong_log10_pfa={case['min_wrong_log10_pfa']:.2f} "
        f"same_unit_pairs_match={pairs['same_unit'].get('match', 0)} "
        f"same_unit_pairs_inconclusive={pairs['same_unit'].get('inconclusive', 0)} "
        f"same_unit_pairs_no_match={pairs['same_unit'].get('no match', 0)} "
        f"different_pairs_match={pairs['different'].get('match', 0)} "
        f"different_pairs_inconclusive={pairs['different'].get('inconclusive', 0)} "
        f"max_wrong_pair_pce={pairs['max_wrong_pair_pce']:.1f} "
        f"aligned_wrong_pairs={pairs['aligned_wrong_pairs']} aligned_wrong_pce_p95={pairs['aligned_wrong_pce_p95']:.1f} "
        f"clean_references_refused={case['refused']} min_reference_fit={case['min_reference_fit']:.0f} "
        f"similar_device_pairs={len(case['similar_pairs'])} "
        f"stray_fit={stray['default']['stray_fit']:.1f} stray_refused={stray['default']['refused']} "
        f"stray_false_matches={stray['default']['false_matches']} "
        f"forced_false_matches={stray['forced']['false_matches']} forced_max_pce={stray['forced']['max_pce']:.1f} "
        f"scene_alpha={args.scene_alpha} seconds={time.perf_counter() - started:.0f}"
    )


if __name__ == "__main__":
    main()
