"""Use case: group media by unknown source camera (`sensorprint cluster`), and enroll a group as a device.

Stages (the method is `prnu.cluster`'s; the figures are benchmarks/cluster_*.py's):

1. read: every file under the paths gets its noise residual once, in a worker
   (`signals.query_signal`); the residual is cached compactly in the case (int8 residual,
   uint8 grey levels, the centre-window signature) with the file's hash, or its one-line
   error; one transaction per file.
2. candidates: the signatures of all files, one matrix product; pairs unlikely under
   "different cameras" become candidates.
3. pairs: each candidate pair gets the full PCE score (`prnu.cluster.pair_score`, the one
   `verify` gives) in the workers, from the caches; committed as each task finishes.
4. groups: linked pairs form groups; each group's fingerprint is matched against the
   media outside it, which join it, and groups merge, until nothing changes (scores of
   this stage are stored too, keyed by the group's members).
5. frames: a video left on its own may be stabilised (every frame a different crop, scale
   and rotation of the sensor, so its aggregate matches nothing); its frames are read again
   and searched one by one against each group's fingerprint (`prnu.stabilised`, as `scan`
   searches a device's), and it joins the group it links best. It never becomes one of
   the files a group's fingerprint is estimated from.
6. devices: each group's fingerprint is matched against every enrolled device.

Resumable like `scan`: killed at any point (SIGKILL included) and run again, files whose
cache is committed and unchanged on disk are not read again, no stored score is computed
again or twice, and the groups, a function of the stored scores alone, come out the same.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from sensorprint.errors import CaseError, MediaError
from sensorprint.media import discover, sha256_file
from sensorprint.media.discover import recorded_path
from sensorprint.prnu import (
    DEFAULT_PCE_THRESHOLD,
    PreparedFingerprint,
    Query,
    extract_residual,
    frame_noise,
    to_gray,
    wiener_dft,
)
from sensorprint.prnu import cluster as method
from sensorprint.prnu.stabilised import compare_stabilised, nominal_scale
from sensorprint.results import Match
from sensorprint.store import Case
from sensorprint.store import clusters as store
from sensorprint.store.names import printable
from sensorprint.workflow.files import FileFacts, fail, file_facts, read_medium, stat_file
from sensorprint.workflow.options import SignalOptions
from sensorprint.workflow.parallel import all_cores_for_blas, completed, open_executor, window_for
from sensorprint.workflow.progress import Progress, no_progress
from sensorprint.workflow.signals import QuerySignal, match_device, query_signal, video_query_residual

PAIR_KEY = "pair"
PAIRS_PER_TASK = 16  # candidate pairs sharing one reference, scored by one worker task
JOIN_TEST = "v4"  # the file-to-group test (`prnu.cluster.join_score`); a new one gets new score keys
FRAMES_KEY = ":frames"  # appended to a group's score key: its scores of single videos searched frame by frame
THUMBNAIL_SIDE = 128  # pixels: the longest side of the thumbnail each file's cache keeps for the report


@dataclass(frozen=True)
class ClusterOptions:
    """How media are grouped (recorded with the run).

    threshold: the lowest PCE that ever links (the customary 60); the run's own threshold
    is higher when its many tests call for it (`prnu.cluster.decision_threshold`).
    family_alarm: the probability that any link of the run is a false alarm.
    signature_side: pixels of the centre window each file's signature keeps.
    max_rounds: rounds of growing groups by their fingerprints (it stops earlier when nothing changes).
    max_frame_searches: single videos × groups searched frame by frame at most (stabilised
    clips; largest groups first; the rest are counted in the summary); 0: none.
    denoiser: of an image's residual, "spatial" or "wavelet" (`image_residual`); a file cached
    with the other is read again.
    """

    signal: SignalOptions = SignalOptions()
    threshold: float = DEFAULT_PCE_THRESHOLD
    family_alarm: float = method.FAMILY_ALARM
    signature_side: int = method.SIGNATURE_SIDE
    max_rounds: int = 6
    max_frame_searches: int = 500
    denoiser: str = "wavelet"

    def to_dict(self) -> dict:
        values = asdict(self)
        values.update(values.pop("signal"))
        return values


@dataclass
class ClusterGroup:
    """One group as the summary gives it: its stored id, members (paths and SHA-256), its link to a device."""

    id: int
    number: int
    paths: list[str]
    sha256: list[str]
    device: str | None = None
    device_score: float | None = None


@dataclass
class ClusterSummary:
    """What a cluster run did (`cli.text.cluster_lines` words it).

    seconds / counts: per stage ("read", "candidates", "pairs", "groups", "frames", "devices"): wall
    seconds, and the units each stage handled (files, pairs screened, pairs scored, tests).
    """

    run_id: int
    files: int = 0
    read: int = 0
    skipped: int = 0
    errors: int = 0
    error_lines: list[str] = field(default_factory=list)
    screened: int = 0
    candidates: int = 0
    scored: int = 0
    reused: int = 0
    spared: int = 0
    group_tests: int = 0
    frame_searches: int = 0  # single videos against group fingerprints, frame by frame, now
    frame_searches_left: int = 0  # not searched: beyond `ClusterOptions.max_frame_searches`
    frame_joined: int = 0  # single videos that joined a group by their frames
    threshold: float = 0.0
    groups: list[ClusterGroup] = field(default_factory=list)
    singletons: list[ClusterGroup] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- worker functions (picklable)


def thumbnail(pixels: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """The medium as read (an image, or a video's first frame used), at most `side` pixels a side, uint8."""
    from PIL import Image

    a = np.asarray(pixels)
    step = max(1, min(a.shape[0], a.shape[1]) // (2 * side))  # every step-th pixel first: no full-size copy
    a = a[::step, ::step]
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    elif a.ndim == 3:
        a = a[:, :, :3]
    picture = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    picture.thumbnail((side, side))
    return np.asarray(picture)


def image_residual(pixels: np.ndarray, sigma: float, denoiser: str) -> np.ndarray:
    """An image's noise residual for clustering: `prnu.extract_residual` (4-level wavelet), or with
    denoiser="spatial" the video path's 3×3 spatial Wiener denoiser (`prnu.frame_noise`), then the same
    zero-mean and DFT Wiener steps: about half the seconds per pixel, true-pair PCE about 10% lower,
    and resized copies weaker (simulated, 8 cameras with twins: ARI 0.949 instead of 0.971, 7
    single media instead of 4; README, Measured)."""
    if denoiser == "wavelet":
        return extract_residual(pixels, sigma=sigma)
    return wiener_dft(frame_noise(to_gray(pixels), method=denoiser, sigma=sigma), zero_mean=True)


def cluster_signal(path: Path, options: SignalOptions, denoiser: str) -> tuple[FileFacts, QuerySignal | None]:
    """`signals.query_signal` (pixels kept, a video's aggregate cleaned) with an image's residual by `image_residual`."""
    if denoiser == "wavelet":
        return query_signal(path, options, keep_pixels=True, clean_video=True)
    facts = file_facts(path)
    try:
        started = time.process_time()
        facts.medium, pixels, frames = read_medium(path, options, facts)
        facts.timings["probe"] = time.process_time() - started
        if pixels is None:
            kept: list[np.ndarray] = []
            clean = options.video_clean
            residual = video_query_residual(path, options, facts, kept, clean=clean, frames=frames)
            return facts, QuerySignal(residual, None, cleaned=clean, pixels=kept)
        started = time.process_time()
        signal = QuerySignal(image_residual(pixels, options.sigma, denoiser), to_gray(pixels), pixels=[pixels])
        facts.timings["residual"] = time.process_time() - started
        return facts, signal
    except Exception as error:  # noqa: BLE001 - one bad file must not stop the run
        fail(facts, error)
        return facts, None


def read_file(path: str, options: SignalOptions, side: int, denoiser: str = "wavelet") -> tuple[FileFacts, dict | None]:
    """Read one file and make its residual cache: int8 residual and step, uint8 grey levels, signature rows,
    and a thumbnail for the report."""
    facts, signal = cluster_signal(Path(path), options, denoiser)
    if signal is None:
        return facts, None
    w, step = method.quantise(signal.residual)
    arrays = {"w": w, "step": np.float32(step), "video": np.bool_(signal.intensity is None)}
    if signal.pixels:
        arrays["thumb"] = thumbnail(signal.pixels[0])
        signal.pixels.clear()
    if signal.intensity is not None:
        arrays["i"] = np.clip(np.rint(signal.intensity), 0, 255).astype(np.uint8)
    arrays["sig"], arrays["sig_n"] = method.signature(signal.as_reference(), side)
    return facts, arrays


def cached_query(cache: str) -> Query:
    """A file's `Query` from its residual cache (the grey levels back as float32, a video's aggregate cleaned)."""
    with np.load(cache, allow_pickle=False) as data:
        residual = method.dequantise(data["w"], float(data["step"]))
        intensity = data["i"].astype(np.float32) if "i" in data.files else None
    return Query(residual, intensity, cleaned=True)


_references: OrderedDict[str, PreparedFingerprint] = OrderedDict()  # per worker: one-medium K of recent references


def _reference(cache: str) -> PreparedFingerprint:
    if cache not in _references:
        if len(_references) >= 8:
            _references.popitem(last=False)
        _references[cache] = PreparedFingerprint(method.one_medium_fingerprint(cached_query(cache)))
    return _references[cache]


def score_pairs(
    reference: tuple[int, str], queries: list[tuple[int, str]], orientations: str, threshold: float
) -> list[tuple]:
    """Score files against one reference file (the larger of each pair): [(query id, reference id, Match)].

    Files of the reference's size get `verify`'s pair score (`prnu.cluster.pair_score`), large images
    first on their centre windows (`prnu.cluster.windowed_pair_score`); a
    smaller one the join test (`prnu.cluster.join_score`: only where it is the reference's full
    width or height), since what `verify` finds beyond that, a native-scale crop, never links.

    threshold: where the geometric search may stop (the run decides links itself, `_State.links`).
    """
    ref_id, ref_cache = reference
    ref_query = cached_query(ref_cache)
    out = []
    for query_id, query_cache in queries:
        query = cached_query(query_cache)
        if method.landscape(query.residual.shape) == method.landscape(ref_query.residual.shape):
            found = method.windowed_pair_score(
                query,
                ref_query,
                threshold=threshold,
                orientations=orientations,
                reference=lambda: _reference(ref_cache),
            )
        else:  # a smaller file: only as a full view of the other (a native-scale crop never links)
            found = method.join_score(
                query,
                _reference(ref_cache).k,
                k_is_video=ref_query.intensity is None,
                threshold=threshold,
                orientations=orientations,
            )
        out.append((query_id, ref_id, found))
    return out


_groups: OrderedDict[tuple, method.GroupFingerprint] = OrderedDict()  # per worker: recent group fingerprints


def _half(k: np.ndarray) -> tuple[np.ndarray, float]:
    """K as its cache keeps it: float16 in units of its standard deviation (a correlation with the float32 K above
    0.99999, at half the bytes), and that unit."""
    unit = float(np.std(k)) or 1.0
    return (k / np.float32(unit)).astype(np.float16), unit


def _from_half(half: np.ndarray, unit: float) -> np.ndarray:
    return half.astype(np.float32) * np.float32(unit)


def _estimate_group(members: list[str]) -> tuple[method.GroupFingerprint, dict]:
    """A group's fingerprint estimated from its reference members' caches, K as its cache gives it back (`_half`),
    and the arrays of that cache."""
    queries = [cached_query(cache) for cache in members]
    group = method.group_fingerprint(queries, list(range(len(queries))))
    half, unit = _half(group.k)
    arrays = {"k": half, "unit": np.float64(unit), "video": np.bool_(group.k_is_video)}
    return replace(group, k=_from_half(half, unit)), arrays


def _group_and_arrays(members: list[str], cache: str | None) -> tuple[method.GroupFingerprint, dict | None]:
    """The group's fingerprint (kept for the next tasks of this worker), and its cache arrays when it was estimated."""
    key = (tuple(members), cache)
    arrays = None
    if key not in _groups:
        if len(_groups) >= 4:
            _groups.popitem(last=False)
        if cache is not None and Path(cache).exists():
            with np.load(cache, allow_pickle=False) as data:
                k, video = _from_half(data["k"], float(data["unit"])), bool(data["video"])
            _groups[key] = method.GroupFingerprint(k, tuple(range(len(members))), video)
        else:
            _groups[key], arrays = _estimate_group(members)
    _groups.move_to_end(key)
    return _groups[key], arrays


def group_fingerprint(members: list[str], cache: str | None = None) -> method.GroupFingerprint:
    """The fingerprint of a group: from its cache file when there is one (`store.clusters.group_cache_path`), else
    estimated from its reference members' caches. K goes through float16 either way (`_half`), so that a
    fingerprint loaded and one estimated score alike."""
    return _group_and_arrays(members, cache)[0]


def group_signatures(
    members: list[str], shapes: list[tuple[int, int]], side: int, cache: str
) -> tuple[dict, dict | None]:
    """({landscape size: [(window, pixels)]}, the arrays of the group's cache, None when the cache exists already).

    The windows are those of the group fingerprint for each size in `shapes` no larger than
    K: K's centre at the scale a medium of that size sees it whole (a resized copy, video
    frames). No window at native scale for a smaller size (a crop): a crop search never
    links (`_State.links`), so nominating crops would only cost searches. The arrays are for
    the caller to keep (`store.clusters.save_group_cache`), so that the tasks scoring files
    against the group load K instead of estimating it again from the members.
    """
    group, arrays = _group_and_arrays(members, cache)
    rows, cols = group.shape
    windows = {
        shape: [method.scaled_signature(group.k, shape, side)]
        for shape in shapes
        if shape[0] <= rows and shape[1] <= cols
    }
    return windows, arrays


def group_signatures_task(tag: int, members: list[str], shapes: list, side: int, cache: str) -> tuple:
    """`group_signatures` with the caller's tag handed back (results arrive in any order)."""
    return tag, *group_signatures(members, shapes, side, cache)


def score_group(
    members: list[str],
    queries: list[tuple[int, str]],
    orientations: str,
    threshold: float,
    cache: str | None = None,
    *,
    rule: method.LinkRule | None = None,
    needed: int = 0,
) -> list[tuple[int, Match]]:
    """Files against a group's fingerprint (from its `cache`, when given and there): [(file id, Match)].

    needed: with `rule`, the links that the queries (the members of one other group) must
    give for that group to merge (`prnu.cluster.merge_links_needed`). The files are then
    scored one by one only until that is reached or out of reach (after the first), and the
    merge is decided as scoring them all would decide it. 0: every file is scored.
    """
    group = group_fingerprint(members, cache)
    out: list[tuple[int, Match]] = []
    linked = 0
    for n, (file_id, query_cache) in enumerate(queries):
        if rule is not None and needed and out and not 0 < needed - linked <= len(queries) - n:
            break
        query = cached_query(query_cache)
        scaled = _scaled(tuple(members), group, query.residual.shape)
        found = method.match_group(query, group, threshold=threshold, orientations=orientations, scaled=scaled)
        out.append((file_id, found))
        linked += rule is not None and rule.links_match(found)
    return out


_scaled_groups: OrderedDict[tuple, dict] = OrderedDict()  # per worker: group fingerprints resized for a query size


def _scaled(key: tuple[str, ...], group: method.GroupFingerprint, shape: tuple[int, int]) -> dict:
    """`prnu.cluster.scaled_fingerprints` of a group for media of `shape` (kept for the next tasks of this worker)."""
    entry = (key, method.landscape(shape), shape[0] > shape[1])
    if entry not in _scaled_groups:
        if len(_scaled_groups) >= 8:
            _scaled_groups.popitem(last=False)
        _scaled_groups[entry] = method.scaled_fingerprints(group.k, shape)
    _scaled_groups.move_to_end(entry)
    return _scaled_groups[entry]


def frame_search_task(
    tag: int, path: str, sha256: str, options: SignalOptions, groups: list[tuple[int, list[str], str]], threshold: float
) -> tuple[int, str | None, list[tuple[int, Match]]]:
    """A video's frames read again and searched against group fingerprints (`prnu.stabilised.compare_stabilised`).

    groups: [(tag of the group, its reference members' caches, its fingerprint cache)].
    Returns (tag, None or the error line, [(group tag, Match)]). The file must still be the
    one that was read (its SHA-256): otherwise its error line, and nothing is scored.
    """
    facts, signal = query_signal(Path(path), options, clean_video=False, keep_frames=True)
    if signal is None:
        return tag, facts.error_line(), []
    now = facts.store_fields()["sha256"]
    if now != sha256:
        return (
            tag,
            f"{printable(path)}: changed since it was read (SHA-256 {str(now)[:12]}… now, {sha256[:12]}… then)",
            [],
        )
    if not signal.frames:
        return tag, f"{printable(path)}: no frame kept for the frame-by-frame search", []
    out = []
    for group_tag, members, cache in groups:
        found = compare_stabilised(signal.frames, group_fingerprint(members, cache).k, threshold=threshold)
        if found is not None:
            out.append((group_tag, found))
    return tag, None, out


def score_group_task(
    tag: int, members: list[str], queries: list, orientations: str, threshold: float, cache: str, rule, needed: int
) -> tuple:
    """`score_group` with the caller's tag handed back (results arrive in any order)."""
    return tag, score_group(members, queries, orientations, threshold, cache, rule=rule, needed=needed)


def device_matches(
    members: list[str], devices: dict, threshold: float, orientations: str, cache: str | None = None
) -> list[Match]:
    """A group's fingerprint against every enrolled device (`signals.match_device`, as a scan compares a file)."""
    group = group_fingerprint(members, cache)
    signal = QuerySignal(group.k, None, cleaned=True)
    return [match_device(signal, refs, None, threshold, orientations=orientations) for refs in devices.values()]


# ---------------------------------------------------------------- the run


@dataclass
class _State:
    """What one cluster run works with: the case, its executor, the files (by position) and their caches."""

    case: Case
    run_id: int
    options: ClusterOptions
    executor: object
    window: int
    progress: Progress
    summary: ClusterSummary
    records: list[store.ClusterFile] = field(default_factory=list)
    stacked: tuple = ()  # `prnu.cluster.stack_signatures` of the files' signatures
    sizes: list[tuple[int, int]] = field(default_factory=list)  # the landscape sizes of the files, sorted
    rule: method.LinkRule = method.LinkRule(1)
    frame_joined: set[int] = field(default_factory=set)  # files that joined a group by their frames (`_frame_stage`)

    def cache(self, i: int) -> str:
        return str(store.cache_path(self.case, self.records[i]))

    def shape(self, i: int) -> tuple[int, int]:
        r = self.records[i]
        return (int(r.details["rows"]), int(r.details["cols"]))

    def is_video(self, i: int) -> bool:
        return self.records[i].kind == "video"

    def links(self, found: store.PairScore) -> bool:
        """Whether a stored score links its two sides (`prnu.cluster.LinkRule`)."""
        return self.rule.links(found.score, found.n_positions, (found.details or {}).get("stage"))


def _to_read(case: Case, paths: list[Path], denoiser: str) -> tuple[list[str], list[str], int]:
    """(every file under `paths`, the files to read now, how many were read before, unchanged, with this denoiser)."""
    every, todo, skipped = [], [], 0
    for path in discover(paths):
        name = str(recorded_path(path))
        every.append(name)
        record = store.find_file(case, name)
        if (
            record is not None
            and (record.size_bytes, record.mtime_ns) == stat_file(Path(name))
            and (record.status != "ok" or _denoiser_of(record) == denoiser)
        ):
            skipped += 1
            continue
        todo.append(name)
    return every, todo, skipped


def _denoiser_of(record: store.ClusterFile) -> str:
    """The denoiser of a cached file's residual (files cached before the choice existed: the wavelet)."""
    return str((record.details or {}).get("denoiser", "wavelet"))


def _file_fields(facts: FileFacts, arrays: dict | None, denoiser: str) -> dict:
    fields = facts.store_fields()
    details = {"frames": len(facts.frames)} if facts.frames else {}
    if arrays is not None:
        rows, cols = arrays["w"].shape
        details.update(rows=int(rows), cols=int(cols), denoiser=denoiser)
    keep = ("path", "sha256", "size_bytes", "mtime_ns", "kind", "width", "height", "status", "error")
    return {**{k: fields[k] for k in keep}, "details": details}


def _read_stage(state: _State, todo: list[str]) -> None:
    """Read the files not yet cached, committing each file's cache (or error) as it arrives."""
    options, summary = state.options, state.summary
    tasks = ((name, options.signal, options.signature_side, options.denoiser) for name in todo)
    state.progress("read", 0, len(todo))
    outcomes = completed(state.executor, read_file, tasks, window=state.window)
    for done, (facts, arrays) in enumerate(outcomes, start=1):
        store.save_file(state.case, _file_fields(facts, arrays, options.denoiser), arrays, state.run_id)
        summary.read += 1
        if facts.error:
            summary.errors += 1
            summary.error_lines.append(facts.error_line())
        state.progress("read", done, len(todo))


def _load_files(state: _State, every: list[str]) -> None:
    """The readable files of this run, in id order, with their signatures (and the lines of unreadable ones)."""
    wanted = set(every)
    records = [r for r in store.files(state.case) if r.path in wanted]
    state.records = [r for r in records if r.status == "ok"]
    for r in records:
        if r.status == "error" and r.run_id != state.run_id:  # an error read in an earlier run: its line again
            state.summary.errors += 1
            state.summary.error_lines.append(r.error or r.path)
    # the rows known from the files' shapes, so that the signatures (5.2 GB for 10,000 photos) go straight into
    # one array as each cache is opened (once)
    caches = (store.load_cache(state.case, r, ("sig", "sig_n")) for r in state.records)
    n_rows = sum(method.view_count(state.shape(i)) for i in range(len(state.records)))
    state.stacked = method.stack_signatures(((c["sig"], c["sig_n"]) for c in caches), n_rows=n_rows)
    state.sizes = sorted({method.landscape(state.shape(i)) for i in range(len(state.records))})
    n = len(state.records)
    n_tests = 2 * method.screened_pairs(n)  # every pair, and at most as many file-to-group tests
    options = state.options
    state.rule = method.LinkRule(n_tests, options.family_alarm, options.threshold)
    state.summary.threshold = method.decision_threshold(
        n_tests, 1, family_alarm=options.family_alarm, floor=options.threshold
    )


def _pair_tasks(state: _State, pairs: list[tuple[int, int]]) -> list[tuple]:
    """Tasks of `score_pairs`: candidate pairs grouped by their reference (the larger file), in order."""
    by_reference: dict[int, list[int]] = {}
    for i, j in pairs:
        size_i, size_j = np.prod(state.shape(i)), np.prod(state.shape(j))
        ref, query = (i, j) if size_i > size_j else (j, i)
        by_reference.setdefault(ref, []).append(query)
    tasks = []
    for ref in sorted(by_reference):
        queries = by_reference[ref]
        for start in range(0, len(queries), PAIRS_PER_TASK):
            part = [(state.records[q].id, state.cache(q)) for q in queries[start : start + PAIRS_PER_TASK]]
            orientations = state.options.signal.orientations
            tasks.append(((state.records[ref].id, state.cache(ref)), part, orientations, state.summary.threshold))
    return tasks


def _score_row(key: str, a_id: int, b_id: int, found: Match) -> store.PairScore:
    evidence = found.evidence
    return store.PairScore(
        key,
        a_id,
        b_id,
        float(found.score or 0.0),
        found.ncc,
        found.p_fa,
        evidence.n_positions if evidence else None,
        dict(found.transform) if found.transform else None,
        {"stage": evidence.search_stage, "transform": evidence.transform_text, "reason": evidence.reason}
        if evidence
        else {},
        None,
    )


def _pair_stage(state: _State) -> list[store.PairScore]:
    """Screen all pairs by signature, score the candidates that can still join two groups; returns their scores.

    The candidates are scored in waves (`prnu.cluster.pair_waves`): strongest signature first,
    a pair only when its two files are not yet linked through pairs that linked, so most
    pairs of one camera are never given a full score (its first links make it one group;
    the group stage then tests the rest against the group's fingerprint, a stronger test).
    The groups are those that scoring every candidate would give. Each wave is a function of
    the scores of the waves before it alone, so a resumed run picks the same pairs: a pair
    found in the store is reused, never scored again.
    """
    started = time.perf_counter()
    with all_cores_for_blas():  # the workers wait for this product
        candidates = method.candidate_pairs(state.stacked)
    state.summary.seconds["candidates"] = time.perf_counter() - started
    n = len(state.records)
    state.summary.screened, state.summary.candidates = method.screened_pairs(n) if n > 1 else 0, len(candidates)
    ids = [r.id for r in state.records]
    stored = {(s.a_id, s.b_id): s for s in store.scores(state.case, PAIR_KEY)}
    key = lambda i, j: (min(ids[i], ids[j]), max(ids[i], ids[j]))  # noqa: E731 - a pair's key in the store
    started = time.perf_counter()
    state.progress("pairs", 0, len(candidates))
    used: list[tuple[int, int]] = []
    linked = method.UnionFind(n)
    remaining = sorted(candidates, key=lambda c: (-c[2], c[0], c[1]))
    done = 0
    while remaining:
        wave, remaining = method.pair_waves(remaining, linked)
        used += [(i, j) for i, j, _ in wave]
        todo = [(i, j) for i, j, _ in wave if key(i, j) not in stored]
        state.summary.reused += len(wave) - len(todo)
        for results in completed(state.executor, score_pairs, _pair_tasks(state, todo), window=state.window):
            rows = [_score_row(PAIR_KEY, min(q, r), max(q, r), found) for q, r, found in results]
            store.save_scores(state.case, rows, state.run_id)
            stored.update({(row.a_id, row.b_id): row for row in rows})
            done += len(rows)
            state.progress("pairs", done, len(candidates))
        for i, j, _ in wave:
            if state.links(stored[key(i, j)]):
                linked.union(i, j)
    state.progress("pairs", len(candidates), len(candidates))
    state.summary.scored = done
    state.summary.spared = len(candidates) - len(used)
    state.summary.seconds["pairs"] = time.perf_counter() - started
    return [stored[key(i, j)] for i, j in sorted(used)]


# ---------------------------------------------------------------- growing groups by their fingerprints


def _reference_members(state: _State, group: list[int]) -> list[int]:
    """The members a group's fingerprint is estimated from (`prnu.cluster.reference_members`); never a video that
    joined by its frames: its aggregate is blurred."""
    pool = [i for i in group if i not in state.frame_joined]
    chosen = method.reference_members([state.shape(i) for i in pool], [state.is_video(i) for i in pool])
    return [pool[c] for c in chosen]


def _group_key(state: _State, reference: list[int]) -> str:
    """The key of a group fingerprint's scores: the hashes of the files it is estimated from, and the join test's
    version (`JOIN_TEST`: scores of an earlier test are not reused)."""
    text = "\n".join(sorted(str(state.records[i].sha256) for i in reference))
    return f"group:{JOIN_TEST}:{state.options.denoiser}:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _group_candidates(state: _State, groups: list[list[int]], signatures: dict[int, dict]) -> dict[int, list[int]]:
    """{group index: files outside it whose signature correlates with the group fingerprint's at their scale}.

    One matrix product per landscape size: the signatures of the files of that size
    against the windows of every group fingerprint for that size (`group_signatures`). A file in a group of two
    or more is a candidate at the level of `candidate_z` for all the files (a merge needs
    half of its group anyway); a single file at the level that expects one chance candidate
    per single file among the groups (`method.single_candidate_z`): a centre window says
    little of a natural scene whose centre is dark, flat or saturated (a photo at PCE 158
    against its group's fingerprint had z 2.6), and the single files are few.
    """
    rows, counts, owners = state.stacked
    n = len(state.records)
    single = np.array([len(groups[g]) == 1 for g in _owner_of(groups, n)])
    z_min = np.where(
        single[owners], method.single_candidate_z(len(signatures)), method.candidate_z(max(1, n) * 2)
    ).astype(np.float32)
    size_of = np.array([_size_index(state, i) for i in range(n)])
    chosen: dict[int, set[int]] = {g: set() for g in signatures}
    for size, shape in enumerate(state.sizes):
        wanted = [g for g in signatures if shape in signatures[g]]
        views = np.nonzero(size_of[owners] == size)[0]
        if not wanted or not len(views):
            continue
        windows = [(g, window) for g in wanted for window in signatures[g][shape]]
        vectors = np.stack([window[0] for _, window in windows])
        pixels = np.array([window[1] for _, window in windows])
        for part in np.array_split(views, -(-len(views) // 1024)):  # a copy of 1024 signatures at a time
            z = method.correlation_z(rows[part], counts[part], vectors, pixels)
            for v, c in zip(*np.nonzero(z >= z_min[part, None]), strict=True):
                chosen[windows[c][0]].add(int(owners[part[v]]))
    return {g: sorted(i for i in found if i not in set(groups[g])) for g, found in chosen.items()}


def _owner_of(groups: list[list[int]], n: int) -> list[int]:
    """The group index of each file 0..n-1."""
    owner = [0] * n
    for g, members in enumerate(groups):
        for i in members:
            owner[i] = g
    return owner


def _size_index(state: _State, i: int) -> int:
    return state.sizes.index(method.landscape(state.shape(i)))


def _group_scores(state: _State, groups: list[list[int]]) -> dict[int, dict[int, store.PairScore]]:
    """{group index: {file index: score against the group's fingerprint}} for groups of two or more."""
    side = state.options.signature_side
    big = [g for g, members in enumerate(groups) if len(members) >= 2]
    references = {g: _reference_members(state, groups[g]) for g in big}
    keys = {g: _group_key(state, references[g]) for g in big}
    caches = {g: str(store.group_cache_path(state.case, keys[g])) for g in big}
    tasks = [(g, [state.cache(i) for i in references[g]], state.sizes, side, caches[g]) for g in big]
    windows = {}
    for g, found, arrays in completed(state.executor, group_signatures_task, tasks, window=state.window):
        windows[g] = found
        if arrays is not None:  # estimated just now: kept (as it arrives), so that the scoring tasks load it
            store.save_group_cache(state.case, keys[g], arrays)
    signatures = {g: windows[g] for g in big}
    with all_cores_for_blas():  # the workers wait for this product
        candidates = _group_candidates(state, groups, signatures)
    position = {r.id: i for i, r in enumerate(state.records)}
    owner = _owner_of(groups, len(state.records))
    stored: dict[int, dict[int, store.PairScore]] = {}
    tasks = []
    for g in big:
        stored[g] = {position[s.b_id]: s for s in store.scores(state.case, keys[g]) if s.b_id in position}
        members = [state.cache(i) for i in references[g]]
        common = (state.options.signal.orientations, state.summary.threshold, caches[g], state.rule)
        singles = []
        for other, files in _by_group(candidates[g], owner).items():
            wanted = [i for i in files if i not in stored[g]]
            if len(groups[other]) == 1:
                singles += wanted
                continue
            # the other group's members, in one task that stops once its merge is decided
            needed = method.merge_links_needed(len(groups[other]))
            needed -= sum(state.links(stored[g][i]) for i in files if i in stored[g])
            if wanted and (len(wanted) == len(files) or 0 < needed <= len(wanted)):
                tasks.append((g, members, _queries(state, wanted), *common, needed))
        for start in range(0, len(singles), PAIRS_PER_TASK):
            tasks.append((g, members, _queries(state, singles[start : start + PAIRS_PER_TASK]), *common, 0))
    for g, found in completed(state.executor, score_group_task, tasks, window=state.window):
        rows = [_score_row(keys[g], 0, file_id, match) for file_id, match in found]
        store.save_scores(state.case, rows, state.run_id)
        stored[g].update({position[row.b_id]: row for row in rows})
        state.summary.group_tests += len(rows)
    return {g: {i: s for i, s in stored[g].items() if i not in set(groups[g])} for g in big}


def _by_group(files: list[int], owner: list[int]) -> dict[int, list[int]]:
    """{group index: its files among `files`}, in the order of `files`."""
    out: dict[int, list[int]] = {}
    for i in files:
        out.setdefault(owner[i], []).append(i)
    return out


def _queries(state: _State, files: list[int]) -> list[tuple[int, str]]:
    return [(state.records[i].id, state.cache(i)) for i in files]


def _regroup(state: _State, groups: list[list[int]], tested: dict[int, dict[int, store.PairScore]]) -> list[list[int]]:
    """Singletons join the group whose fingerprint they match best; a group merges into another
    when most of its members match the other's fingerprint (`prnu.cluster.merge_supported`)."""
    owner = {i: g for g, members in enumerate(groups) for i in members}
    edges: list[tuple[int, int]] = []
    best: dict[int, tuple[float, int]] = {}
    votes: dict[tuple[int, int], int] = {}
    for g, scored in tested.items():
        for i, score in scored.items():
            if not state.links(score):
                continue
            other = owner[i]
            if len(groups[other]) == 1:
                if score.score > best.get(i, (-np.inf, -1))[0]:
                    best[i] = (score.score, g)
            else:
                votes[(g, other)] = votes.get((g, other), 0) + 1
    edges += [(g, owner[i]) for i, (_, g) in best.items()]
    edges += [(g, other) for (g, other), n in votes.items() if method.merge_supported(n, len(groups[other]))]
    merged = method.components(len(groups), edges)
    return sorted((sorted(i for g in part for i in groups[g]) for part in merged), key=lambda m: m[0])


def _group_stage(state: _State, pair_scores: list[store.PairScore]) -> tuple[list[list[int]], dict]:
    """Groups from the linked pairs, grown by their fingerprints until nothing changes."""
    position = {r.id: i for i, r in enumerate(state.records)}
    edges = [(position[s.a_id], position[s.b_id]) for s in pair_scores if state.links(s)]
    groups = method.components(len(state.records), edges)
    tested: dict = {}
    for round_number in range(1, state.options.max_rounds + 1):
        state.progress("groups", round_number - 1, state.options.max_rounds)
        tested = _group_scores(state, groups)
        regrouped = _regroup(state, groups, tested)
        if regrouped == groups:
            break
        groups = regrouped
    else:
        tested = _group_scores(state, groups)
    state.progress("groups", state.options.max_rounds, state.options.max_rounds)
    return groups, tested


def _frame_searches(state: _State, groups: list[list[int]]) -> list[tuple[int, int]]:
    """The (single video, group index) pairs to search frame by frame: every group of two or more whose
    fingerprint the video can be a view of, largest groups first, at most `max_frame_searches`."""
    videos = [m[0] for m in groups if len(m) == 1 and state.is_video(m[0])]
    big = sorted((g for g, m in enumerate(groups) if len(m) >= 2), key=lambda g: (-len(groups[g]), g))
    pairs = []
    for g in big:
        k_shape = method.landscape(state.shape(_reference_members(state, groups[g])[0]))
        pairs += [(i, g) for i in videos if nominal_scale(state.shape(i), k_shape) is not None]
    state.summary.frame_searches_left = max(0, len(pairs) - state.options.max_frame_searches)
    return pairs[: state.options.max_frame_searches]


def _frame_stage(state: _State, groups: list[list[int]], tested: dict) -> tuple[list[list[int]], dict]:
    """Single videos searched frame by frame against the groups' fingerprints (stabilised clips, `frame_search_task`);
    each joins the group it links best. Scores are stored under the group's key + `FRAMES_KEY`, per video as it
    arrives, and reused when the run resumes. Returns the groups and `tested` (`_group_stage`'s) renumbered."""
    pairs = _frame_searches(state, groups)
    groups_of = sorted({g for _, g in pairs})
    references = {g: _reference_members(state, groups[g]) for g in groups_of}
    keys = {g: _group_key(state, references[g]) for g in groups_of}
    stored = {g: {s.b_id: s for s in store.scores(state.case, keys[g] + FRAMES_KEY)} for g in groups_of}
    wanted: dict[int, list[int]] = {}
    for i, g in pairs:
        if state.records[i].id not in stored[g]:
            wanted.setdefault(i, []).append(g)
    tasks = []
    for i, gs in wanted.items():
        targets = [
            (g, [state.cache(m) for m in references[g]], str(store.group_cache_path(state.case, keys[g]))) for g in gs
        ]
        record = state.records[i]
        tasks.append((i, record.path, str(record.sha256), state.options.signal, targets, state.summary.threshold))
    state.progress("frames", 0, len(tasks))
    for done, (i, error, found) in enumerate(completed(state.executor, frame_search_task, tasks, window=state.window)):
        if error:
            state.summary.error_lines.append(error)
        rows = [_score_row(keys[g] + FRAMES_KEY, 0, state.records[i].id, match) for g, match in found]
        store.save_scores(state.case, rows, state.run_id)
        for g, row in zip((g for g, _ in found), rows, strict=True):
            stored[g][row.b_id] = row
        state.summary.frame_searches += len(rows)
        state.progress("frames", done + 1, len(tasks))
    best: dict[int, tuple[float, int]] = {}
    for i, g in pairs:
        score = stored[g].get(state.records[i].id)
        if score is not None and state.links(score) and score.score > best.get(i, (-np.inf, -1))[0]:
            best[i] = (score.score, g)
    groups = [list(m) for m in groups]
    for i, (_, g) in best.items():
        groups[g] = sorted([*groups[g], i])
        groups[groups.index([i])] = []
        state.frame_joined.add(i)
    state.summary.frame_joined = len(best)
    kept = [g for g, m in enumerate(groups) if m]
    renumber = {g: n for n, g in enumerate(kept)}
    return [groups[g] for g in kept], {renumber[g]: scores for g, scores in tested.items()}


# ---------------------------------------------------------------- devices, storing, the use case


def _group_record(state: _State, members: list[int], devices: dict) -> dict:
    """What the store keeps of one group: members, their scores against its fingerprint, its device link."""
    record: dict = {"members": [state.records[i].id for i in members], "details": {}}
    if len(members) < 2:
        return record
    reference = _reference_members(state, members)
    record["details"]["reference_members"] = [state.records[i].id for i in reference]
    record["details"]["key"] = _group_key(state, reference)
    if devices:
        cache = str(store.group_cache_path(state.case, record["details"]["key"]))
        found = device_matches([state.cache(i) for i in reference], devices, state.options.threshold, "sensor", cache)
        record["details"]["devices"] = [
            {"device": m.target, "pce": m.score, "decision": str(m.decision), "p_fa": m.p_fa} for m in found
        ]
        matched = [m for m in found if str(m.decision) == "match"]
        if matched:
            top = max(matched, key=lambda m: m.score or 0.0)
            record["device"], record["device_score"] = top.target, top.score
    return record


def _member_scores(state: _State, groups: list[list[int]]) -> dict[int, dict[int, float]]:
    """{group index: {file id: PCE against the group's fingerprint}} from the stored scores."""
    position = {r.id: i for i, r in enumerate(state.records)}
    out: dict[int, dict[int, float]] = {}
    for g, members in enumerate(groups):
        if len(members) < 2:
            continue
        key = _group_key(state, _reference_members(state, members))
        inside = set(members)
        scores = [*store.scores(state.case, key), *store.scores(state.case, key + FRAMES_KEY)]
        out[g] = {s.b_id: s.score for s in scores if position.get(s.b_id) in inside}
    return out


def _near_groups(state: _State, groups: list[list[int]], tested: dict) -> dict[int, dict[int, float]]:
    """{group index: {other group number: best PCE of its members against this group's fingerprint}}."""
    owner = {i: g for g, members in enumerate(groups) for i in members}
    near: dict[int, dict[int, float]] = {}
    for g, scored in tested.items():
        for i, score in scored.items():
            other = owner[i] + 1
            near.setdefault(g, {})[other] = max(near.get(g, {}).get(other, -np.inf), float(score.score))
    return near


def _store_groups(state: _State, groups: list[list[int]], tested: dict) -> None:
    """Match the groups with the enrolled devices and store them (singletons last), in one transaction."""
    from sensorprint.workflow.scan import enrolled_fingerprints

    started = time.perf_counter()
    devices = enrolled_fingerprints(state.case)
    ordered = sorted(groups, key=lambda m: (len(m) < 2, m[0]))
    old_index = {tuple(m): g for g, m in enumerate(groups)}
    scores, near = _member_scores(state, groups), _near_groups(state, groups, tested)
    records = []
    for members in ordered:
        g = old_index[tuple(members)]
        record = _group_record(state, members, devices)
        record["scores"] = scores.get(g, {})
        renumber = {old_index[tuple(m)] + 1: n for n, m in enumerate(ordered, start=1)}
        record["details"]["near"] = {str(renumber[o]): v for o, v in near.get(g, {}).items()}
        records.append(record)
    store.save_groups(state.case, state.run_id, records)
    state.summary.seconds["devices"] = time.perf_counter() - started
    files = {r.id: r for r in state.records}
    for stored in store.groups(state.case, state.run_id):
        entry = _cluster_group(stored, files)
        (state.summary.groups if len(stored.members) > 1 else state.summary.singletons).append(entry)


def cluster(
    case: Case,
    paths: list[Path],
    *,
    options: ClusterOptions = ClusterOptions(),
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress = no_progress,
) -> ClusterSummary:
    """Group every image and video under `paths` by source camera; store the groups with the run."""
    for path in paths:
        if not Path(path).exists():
            raise CaseError(f"{path} does not exist: check the path of the media to group")
    parameters = {"paths": [str(Path(p).resolve()) for p in paths], **options.to_dict()}
    run_id = case.start_run("cluster", parameters)
    summary = ClusterSummary(run_id)
    status = "interrupted"
    try:
        with open_executor(workers, scheduler) as executor:
            state = _State(case, run_id, options, executor, window_for(workers, scheduler), progress, summary)
            _run(state, paths)
        status = "completed"
    finally:
        case.finish_run(run_id, status, _run_summary(summary))
    return summary


def _run(state: _State, paths: list[Path]) -> None:
    summary = state.summary
    clock = time.perf_counter()
    every, todo, summary.skipped = _to_read(state.case, paths, state.options.denoiser)
    summary.files = len(every)
    _read_stage(state, todo)
    _load_files(state, every)
    summary.seconds["read"] = time.perf_counter() - clock
    pair_scores = _pair_stage(state)
    clock = time.perf_counter()
    groups, tested = _group_stage(state, pair_scores)
    summary.seconds["groups"] = time.perf_counter() - clock
    clock = time.perf_counter()
    groups, tested = _frame_stage(state, groups, tested)
    summary.seconds["frames"] = time.perf_counter() - clock
    _store_groups(state, groups, tested)
    summary.counts = {
        "read": summary.read,
        "candidates": summary.screened,
        "pairs": summary.scored,
        "groups": summary.group_tests,
        "frames": summary.frame_searches,
    }


def _run_summary(summary: ClusterSummary) -> dict:
    values = asdict(summary)
    values["error_lines"] = summary.error_lines[:100]
    values["groups"] = [{"id": g.id, "members": len(g.paths), "device": g.device} for g in summary.groups]
    values["singletons"] = len(summary.singletons)
    return values


def cluster_paths(case: Case, cluster_id: int) -> list[Path]:
    """The member files of a stored group, each checked to be the file that was grouped (its SHA-256).

    CaseError when the case holds no group of that id, or when a member is gone or changed
    since the clustering read it (its bytes would not be the medium the group was formed from).
    """
    group = store.get_group(case, cluster_id)
    if group is None:
        raise CaseError(f"{case.root} holds no group {cluster_id}: `sensorprint clusters {case.root}` lists them")
    by_id = {r.id: r for r in store.files(case)}
    paths = [Path(by_id[f].path) for f in group.members]
    for path, f in zip(paths, group.members, strict=True):
        try:
            now = sha256_file(path)
        except MediaError as error:
            raise CaseError(f"group {cluster_id}: {error}") from error
        if now != by_id[f].sha256:
            raise CaseError(
                f"group {cluster_id}: {path} changed since it was grouped (SHA-256 {now[:12]}… now, "
                f"{str(by_id[f].sha256)[:12]}… then); run `sensorprint cluster` again"
            )
    return paths


def enroll_cluster(case: Case, cluster_id: int, device_name: str, **options):
    """Enroll a stored group as a device: its member files become the device's reference media.

    options: those of `workflow.enroll.enroll` (model, options, workers, scheduler, progress).
    """
    from sensorprint.workflow.enroll import enroll

    paths = cluster_paths(case, cluster_id)
    case.audit("cluster enrolled as a device", {"cluster_id": cluster_id, "device": device_name, "files": len(paths)})
    return enroll(case, device_name, paths, **options)


def stored_groups(case: Case, run_id: int | None = None) -> list[ClusterGroup]:
    """The groups of the latest cluster run (or of `run_id`), singletons included, for `sensorprint clusters`."""
    by_id = {r.id: r for r in store.files(case)}
    return [_cluster_group(g, by_id) for g in store.groups(case, run_id)]


def _cluster_group(stored, files: dict) -> ClusterGroup:
    """A stored group with its members' paths and hashes ({file id: the file's record})."""
    return ClusterGroup(
        stored.id,
        stored.number,
        [files[f].path for f in stored.members],
        [str(files[f].sha256) for f in stored.members],
        stored.device,
        stored.device_score,
    )
