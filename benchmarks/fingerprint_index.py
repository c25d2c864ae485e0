"""The fingerprint index at scale: shortlist time, recall, decisions against the exhaustive PCE, size.

Synthetic cameras made as arrays (never through images), each generated on the fly from its
seed so that memory stays bounded: sensor PRNU S_j ~ N(0, 1), the enrolled fingerprint
K_j = S_j + N(0, 1) (an estimate from a handful of images), sizes 1000×1500 (75 %) and
864×1920 (25 %): 1.5 and 1.66 MP, neither fitting inside the other. Queries: half from
enrolled sensors, half from sensors never enrolled; a query's residual is
W = a·(I/128)·S + σ·N under an uneven light I (20..240) and texture σ (0.5..2), so that W·I is
heavy-tailed as in photographs, with a chosen so that true-pair PCEs spread over about
20..3000 (log-uniform).

For every query: the index path (`prnu.digest`, as `workflow.screen` runs it: code the
query, score its size group, shortlist by `shortlist_cuts`, confirm with `prnu.compare`) and
the exhaustive path. The exhaustive PCE of every pair comes from the identity the matcher's
aligned PCE obeys (peak = Σ q̃·k̃ of the whitened arrays, surface energy from their power
spectra: one matrix product for all queries of a size per camera); every pair whose identity
PCE exceeds τ/2 is recomputed with `prnu.compare` itself, so the decisions that matter are the
matcher's own (the identity's relative error on those pairs is printed).

Run: .venv/bin/python benchmarks/fingerprint_index.py [--cameras 10000] [--queries 100] [--workers 2]
Last line: cameras=N queries=Q recall=R identical=K query_s=S build_s=B bytes_per_camera=N

Timing only (no build, random rows; minutes, not an hour):
    .venv/bin/python benchmarks/fingerprint_index.py --timing-only 1000,10000 --queries 20
Last line: cameras=N query_s=S max_s=M ... coding_s=C us_per_fingerprint=U load=L
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.fft  # noqa: E402

from sensorprint.prnu import Query, compare, digest  # noqa: E402

THRESHOLD = 60.0
SIZES = ((1000, 1500), (864, 1920))
SIZE_SHARE = (0.75, 0.25)
NEVER_ENROLLED = 10_000_000
THREADS = 2  # threads that score a query's rows (--workers)  # seeds of sensors that are not in the library


def camera_size(j: int) -> tuple[int, int]:
    return SIZES[0] if (j * 2654435761) % 100 < SIZE_SHARE[0] * 100 else SIZES[1]


def sensor(j: int, shape: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng([j, 1]).standard_normal(shape, dtype=np.float32)


def fingerprint(j: int) -> np.ndarray:
    shape = camera_size(j)
    noise = np.random.default_rng([j, 2]).standard_normal(shape, dtype=np.float32)
    return sensor(j, shape) + noise


def _smooth(rng, shape: tuple[int, int], low: float, high: float, cells: int = 12) -> np.ndarray:
    coarse = rng.uniform(low, high, (cells, cells)).astype(np.float32)
    rows = np.minimum(np.arange(shape[0]) * cells // shape[0], cells - 1)
    cols = np.minimum(np.arange(shape[1]) * cells // shape[1], cells - 1)
    return coarse[np.ix_(rows, cols)]


@dataclass(frozen=True)
class QuerySpec:
    number: int
    source: int  # camera seed (>= NEVER_ENROLLED: a sensor not in the library)
    shape: tuple[int, int]
    strength: float

    @property
    def enrolled(self) -> bool:
        return self.source < NEVER_ENROLLED


def make_query(spec: QuerySpec) -> Query:
    """A query's residual and intensity, regenerated from its seed."""
    rng = np.random.default_rng([spec.number, 3])
    light = _smooth(rng, spec.shape, 20, 240)
    texture = _smooth(rng, spec.shape, 0.5, 2.0)
    w = spec.strength * (light / 128) * sensor(spec.source, spec.shape)
    w += texture * rng.standard_normal(spec.shape, dtype=np.float32)
    return Query(w.astype(np.float32), light)


def query_specs(cameras: int, count: int, seed: int) -> list[QuerySpec]:
    """Half from enrolled sensors (PCE spread log-uniformly), half from sensors never enrolled."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(count):
        if i % 2 == 0:
            source = int(rng.integers(cameras))
            shape = camera_size(source)
        else:
            source = NEVER_ENROLLED + i
            shape = SIZES[int(rng.random() >= SIZE_SHARE[0])]
        # PCE grows as a²·n; a = 0.0105 gives about PCE 60 at 1.5 MP under this light and texture
        target = math.exp(rng.uniform(math.log(20), math.log(3000)))
        specs.append(QuerySpec(i, source, shape, 0.0105 * math.sqrt(target / 60)))
    return specs


def half_weights(shape: tuple[int, int]) -> np.ndarray:
    """Weights of a real-FFT half spectrum's columns in sums over the full spectrum."""
    cols = shape[1] // 2 + 1
    weights = np.full(cols, 2.0, dtype=np.float32)
    weights[0] = 1.0
    if shape[1] % 2 == 0:
        weights[-1] = 1.0
    return weights


# ---------------------------------------------------------------- the per-camera pass (workers)

_QUERIES: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # size -> (whitened q, weighted power)
_BITS: dict[tuple[int, int], str] = {}


def _whitened_query(spec: QuerySpec) -> tuple[np.ndarray, np.ndarray]:
    query = make_query(spec).prepared()
    spectrum = query.spectrum(0, False, spec.shape)
    power = (spectrum.real**2 + spectrum.imag**2) * half_weights(spec.shape)
    return scipy.fft.irfft2(spectrum, s=spec.shape).astype(np.float32).ravel(), power.astype(np.float32).ravel()


def camera_pass(job: tuple[tuple[int, int], list[tuple[int, int]]]):
    """Code each camera of one size into its index row; the identity PCE of every query of that size."""
    shape, members = job
    bits = np.load(_BITS[shape], mmap_mode="r+")
    q_white, q_power = _QUERIES.get(shape, (np.zeros((0, 1), np.float32), np.zeros((0, 1), np.float32)))
    n = shape[0] * shape[1]
    code_s, pces, efficiencies = 0.0, [], []
    for j, row in members:
        k = fingerprint(j)
        started = time.perf_counter()  # the steps of digest.fingerprint_code, the whitened K kept
        whitened = digest.whitened_fingerprint(k)
        bits[row], efficiency = digest.pack_bits(whitened > 0), digest.sign_efficiency(whitened)
        code_s += time.perf_counter() - started
        efficiencies.append(efficiency)
        if q_white.shape[0]:
            spectrum = scipy.fft.rfft2(whitened)  # the whitened spectrum again (one FFT, not three steps)
            k_white = whitened.ravel()
            k_power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32).ravel()
            peak = (q_white @ k_white).astype(np.float64)
            total = (q_power @ k_power).astype(np.float64) / n
            energy = np.maximum(total - peak * peak, 1e-30) / (n - 1)
            pces.append(np.sign(peak) * peak * peak / energy)
    bits.flush()
    return shape, [j for j, _ in members], efficiencies, code_s, pces


def build(cameras: int, specs: list[QuerySpec], workers: int, folder: Path):
    """The index rows of every camera (memory-mapped files) and the exhaustive identity PCEs."""
    groups: dict[tuple[int, int], list[int]] = {}
    for j in range(cameras):
        groups.setdefault(camera_size(j), []).append(j)
    for shape, members in groups.items():
        path = folder / f"bits-{shape[0]}x{shape[1]}.npy"
        np.lib.format.open_memmap(path, mode="w+", dtype=np.uint64, shape=(len(members), digest.words_for(shape)))
        _BITS[shape] = str(path)
    for shape in groups:
        wanted = [s for s in specs if s.shape == shape]
        pairs = [_whitened_query(s) for s in wanted]
        if pairs:
            _QUERIES[shape] = (np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))
    jobs = []
    for shape, members in groups.items():
        rows = list(enumerate(members))
        jobs += [(shape, [(j, r) for r, j in rows[i : i + 50]]) for i in range(0, len(rows), 50)]
    efficiency = {shape: np.zeros(len(m)) for shape, m in groups.items()}
    identity = {shape: np.zeros((sum(s.shape == shape for s in specs), len(m))) for shape, m in groups.items()}
    started, code_s = time.perf_counter(), 0.0
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for shape, ids, effs, seconds, pces in pool.imap_unordered(camera_pass, jobs):
            code_s += seconds
            rows = [groups[shape].index(j) for j in ids] if len(ids) < 2 else _rows_of(groups[shape], ids)
            efficiency[shape][rows] = effs
            if pces:
                identity[shape][:, rows] = np.stack(pces, axis=1)
    _QUERIES.clear()
    return groups, efficiency, identity, code_s, time.perf_counter() - started


def _rows_of(members: list[int], ids: list[int]) -> list[int]:
    first = members.index(ids[0])
    return list(range(first, first + len(ids)))


# ---------------------------------------------------------------- the queries (this process)


@dataclass
class QueryOutcome:
    shortlist_s: float
    score_s: float  # of which scoring the rows (the rest: coding the query, once)
    shortlisted: int
    screened: int
    recall_case: bool  # the exhaustive path matched some camera
    recalled: bool  # ... and every camera it matched is shortlisted
    identical: bool
    true_pce: float | None
    true_margin: float | None
    identity_errors: list[float]


def screen_query(query: Query, bits: np.ndarray, efficiency: np.ndarray, shape: tuple[int, int]):
    """What `workflow.screen` does for one size group: code, score, cut, shortlist (timed by the caller)."""
    prepared = query.prepared()
    best = np.full(bits.shape[0], -np.inf)
    score_s = 0.0
    for rotation, flip in digest.aligned_orientations(prepared.shape, shape):
        code = digest.code_prepared_query(prepared, rotation, flip, shape)
        started = time.perf_counter()
        values = digest.scores(bits, code, threads=THREADS)
        best = np.maximum(best, values - digest.shortlist_cuts(code.efficiency * efficiency, THRESHOLD))
        score_s += time.perf_counter() - started
    return digest.shortlist(best, 0.0), best, score_s


def run_query(spec: QuerySpec, members: list[int], bits, efficiency, identity_row) -> QueryOutcome:
    query = make_query(spec)
    started = time.perf_counter()
    shortlisted, margins, score_s = screen_query(query, bits, efficiency, spec.shape)
    shortlist_s = time.perf_counter() - started
    exact: dict[int, float] = {}

    def pce_of(row: int) -> float:
        if row not in exact:
            exact[row] = compare(query, fingerprint(members[row]), k_is_video=False).score
        return exact[row]

    index_matches = {row for row in shortlisted if pce_of(int(row)) >= THRESHOLD}
    recheck = np.flatnonzero(identity_row >= THRESHOLD / 2)
    errors = [abs(identity_row[r] - pce_of(int(r))) / max(abs(pce_of(int(r))), 1e-9) for r in recheck]
    full_matches = {int(r) for r in recheck if pce_of(int(r)) >= THRESHOLD}
    true_pce = true_margin = None
    if spec.enrolled:
        row = members.index(spec.source)
        true_pce, true_margin = pce_of(row), float(margins[row])
    return QueryOutcome(
        shortlist_s,
        score_s,
        len(shortlisted),
        len(members),
        bool(full_matches),
        full_matches <= {int(r) for r in shortlisted},
        {int(r) for r in index_matches} == full_matches,
        true_pce,
        true_margin,
        errors,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--timing-only", metavar="N,N", help="only time the shortlist against N random index rows per count (no build)"
    )
    args = parser.parse_args()
    global THREADS
    THREADS = args.workers
    if args.timing_only:
        timing_only([int(n) for n in args.timing_only.split(",")], args.queries, args.seed)
        return
    specs = query_specs(args.cameras, args.queries, args.seed)
    with tempfile.TemporaryDirectory(prefix="fingerprint-index-") as folder:
        groups, efficiency, identity, code_s, pass_s = build(args.cameras, specs, args.workers, Path(folder))
        bits = {shape: np.load(path, mmap_mode="r") for shape, path in _BITS.items()}
        index_bytes = sum(Path(path).stat().st_size for path in _BITS.values())
        outcomes = []
        for spec in specs:
            row = sum(s.shape == spec.shape for s in specs[: spec.number])
            members = groups[spec.shape]
            outcomes.append(
                run_query(spec, members, bits[spec.shape], efficiency[spec.shape], identity[spec.shape][row])
            )
        first = specs[0]
        query_bytes = query_memory(make_query(first), bits[first.shape], efficiency[first.shape], first.shape)
    report(args, outcomes, groups, code_s, pass_s, index_bytes, query_bytes)


def timing_only(counts: list[int], queries: int, seed: int) -> None:
    """Shortlist time per query against `n` rows of random bits of the 1.5 MP size, for each n, in one run.

    The time of scoring a row does not depend on its bits (XOR, AND, popcount), so random rows
    time the index as real ones do; recall and decisions need the full run. The counts are
    timed in turn, query by query, so that the machine's load weighs on each alike.
    """
    shape = SIZES[0]
    rng = np.random.default_rng(seed)
    rows = max(int(round(n * SIZE_SHARE[0])) for n in counts)
    bits = rng.integers(0, np.iinfo(np.int64).max, size=(rows, digest.words_for(shape)), dtype=np.uint64)
    efficiency = np.full(rows, math.sqrt(2 / math.pi))
    times: dict[int, list[float]] = {n: [] for n in counts}
    cpu: dict[int, list[float]] = {n: [] for n in counts}  # CPU seconds of both threads: the time on free cores
    coding: list[float] = []
    for i in range(queries):
        query = make_query(QuerySpec(i, NEVER_ENROLLED + i, shape, 0.01))
        for n in counts:
            part = int(round(n * SIZE_SHARE[0]))
            started, cpu_started = time.perf_counter(), time.process_time()
            _, _, score_s = screen_query(query, bits[:part], efficiency[:part], shape)
            times[n].append(time.perf_counter() - started)
            cpu[n].append(time.process_time() - cpu_started)
            coding.append(times[n][-1] - score_s)
    load = os.getloadavg()[0]
    for n in counts:
        t = np.array(times[n])
        print(
            f"{n:>7} fingerprints ({int(round(n * SIZE_SHARE[0]))} of the 1.5 MP size screened): shortlist mean "
            f"{t.mean():.3f} s, median {np.median(t):.3f} s, 95th percentile {np.percentile(t, 95):.3f} s, "
            f"max {t.max():.3f} s; CPU {np.mean(cpu[n]):.3f} s per query (on {THREADS} free cores: "
            f"{np.mean(cpu[n]) / THREADS:.3f} s)"
        )
    per_row = (np.mean(times[max(counts)]) - np.mean(times[min(counts)])) / (
        (max(counts) - min(counts)) * SIZE_SHARE[0]
    )
    print(f"coding a query {np.mean(coding):.3f} s; each further fingerprint {per_row * 1e6:.1f} us; load {load:.1f}")
    print(
        " ".join(
            f"cameras={n} query_s={np.mean(times[n]):.3f} max_s={np.max(times[n]):.3f} cpu_s={np.mean(cpu[n]):.3f}"
            for n in counts
        )
        + f" coding_s={np.mean(coding):.3f} us_per_fingerprint={per_row * 1e6:.1f} load={load:.1f}"
    )


def query_memory(query: Query, bits: np.ndarray, efficiency: np.ndarray, shape: tuple[int, int]) -> int:
    """Peak bytes that screening one query allocates (numpy arrays, traced), beside the memory-mapped index."""
    import tracemalloc

    tracemalloc.start()
    try:
        screen_query(query, bits, efficiency, shape)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def report(
    args, outcomes: list[QueryOutcome], groups, code_s: float, pass_s: float, index_bytes: int, query_bytes: int
) -> None:
    cameras = args.cameras
    times = np.array([o.shortlist_s for o in outcomes])
    screened = np.array([o.screened for o in outcomes])
    shortlisted = np.array([o.shortlisted for o in outcomes])
    cases = [o for o in outcomes if o.recall_case]
    recall = sum(o.recalled for o in cases) / max(len(cases), 1)
    identical = sum(o.identical for o in outcomes)
    true = [(o.true_pce, o.true_margin) for o in outcomes if o.true_pce is not None]
    passing = [(p, m) for p, m in true if p >= THRESHOLD]
    errors = [e for o in outcomes for e in o.identity_errors]
    manifest_entry = 260  # bytes of one manifest entry (JSON: ids, SHA-256, names, shape, efficiency)
    bytes_per_camera = int(round(index_bytes / cameras + manifest_entry))
    per_row_s = float(sum(o.score_s for o in outcomes) / np.sum(screened))
    fixed_s = float(np.mean([o.shortlist_s - o.score_s for o in outcomes]))
    build_s = code_s / args.workers
    query_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; counts the mapped index pages it read
    build_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"sizes: {', '.join(f'{w}x{h}: {len(m)}' for (h, w), m in groups.items())} fingerprints")
    print(
        f"shortlist per query: mean {times.mean():.3f} s, median {np.median(times):.3f} s, 95th percentile "
        f"{np.percentile(times, 95):.3f} s, max {times.max():.3f} s (query {int(times.argmax())}, "
        f"{screened[int(times.argmax())]} screened) (coding the query {fixed_s:.3f} s, then {per_row_s * 1e6:.1f} us "
        "per fingerprint scored)"
    )
    print(
        f"shortlisted per query: mean {shortlisted.mean():.1f}, max {shortlisted.max()} of {screened.mean():.0f} screened"
    )
    print(
        f"queries the exhaustive path matched: {len(cases)}; all their matches shortlisted: {sum(o.recalled for o in cases)}"
    )
    if passing:
        low = min(passing)
        print(
            f"true pairs passing τ: {len(passing)}, smallest PCE {low[0]:.1f} (score - cut {low[1]:+.2f}), smallest margin {min(m for _, m in passing):+.2f}"
        )
    print(
        f"true pairs under τ: {len(true) - len(passing)} (PCE {', '.join(f'{p:.0f}' for p, _ in sorted(true)[: len(true) - len(passing)])})"
    )
    print(f"decisions identical to the exhaustive ones: {identical} of {len(outcomes)} queries")
    if errors:
        print(
            f"identity PCE vs prnu.compare on the {len(errors)} pairs rechecked: max relative error {max(errors):.2e}"
        )
    print(
        f"index: {index_bytes / 1e9:.3f} GB of bits, {bytes_per_camera} bytes per fingerprint; build {code_s:.1f} s of worker time, wall clock inside the workers ({build_s:.1f} s on {args.workers} cores); per-camera pass {pass_s:.0f} s wall; peak RSS: querying {query_rss / 1e6:.2f} GB (of which the memory-mapped index, read from the page cache, up to {index_bytes / 1e9:.2f} GB), a build worker {build_rss / 1e6:.2f} GB"
    )
    print(
        f"memory of one query's screening: {query_bytes / 1e6:.0f} MB allocated at most (its code and the scratch "
        f"blocks), whatever the number of fingerprints; the index is memory-mapped ({index_bytes / 1e9:.2f} GB here), "
        "its pages shared by every worker of one machine through the page cache"
    )
    for n in (1_000, 10_000, 1_000_000):
        print(
            f"on paper at {n:>9,} fingerprints of this mix: shortlist {fixed_s + per_row_s * n * 0.75:.2f} s per query "
            f"({args.workers} threads), "
            f"false candidates {n * 0.75 * np.mean(shortlisted - 4) / max(np.mean(screened), 1):.1f} + 4 kept, "
            f"index {n * bytes_per_camera / 1e9:.2f} GB, build {code_s / cameras * n / 3600:.2f} worker h"
        )
    print(
        f"cameras={cameras} queries={len(outcomes)} recall={recall:.3f} identical={identical} "
        f"query_s={times.mean():.3f} build_s={build_s:.1f} bytes_per_camera={bytes_per_camera}"
    )


if __name__ == "__main__":
    main()
