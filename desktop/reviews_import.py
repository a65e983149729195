"""Merging a reviews file into a folder's store without losing anything.

Each entry is checked whole first (a bad mark, decision or time skips the
entry with one line saying which and why) and written in one transaction.
Against what the folder already holds for that image:

* nothing yet: the entry becomes the review;
* the same decision, class, note and marks: nothing changes (another
  reviewer's confirmation is still recorded, for inter-reader agreement);
* different (a conflict, counted): the later ``reviewed_at`` wins the
  current state and the other version stays in the history either way.

An entry's ``decision`` null or absent leaves the image's decision as it is
(an import cannot clear a decision); an absent ``note`` or ``annotations``
likewise leaves those alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.annotations import Annotation, AnnotationError, dumps
from desktop.review_store import DECISIONS, ReviewStore, normalise_time


class EntryError(ValueError):
    """One entry that cannot be imported; the message says why."""


@dataclass
class Entry:
    path: str | None
    sha256: str | None
    reviewer: str
    at: str
    decision: str | None
    cls: str | None
    ai_class: str | None
    note: str | None
    marks: list[Annotation] | None


@dataclass
class ImportReport:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_in_history: int = 0
    conflicts: int = 0
    by_path: int = 0  # matched by path because no file had the entry's hash
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.kept_in_history} older kept in history; {self.conflicts} conflict(s); "
            f"{len(self.problems)} skipped"
            + (f"; {self.by_path} matched by path only" if self.by_path else "")
        )


def _latest_allowed() -> str:
    """Times later than a day from now are refused (clocks differ a little, never by more)."""
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="milliseconds")


def _text(d: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    v = d.get(key)
    if v is None:
        if required:
            raise EntryError(f"no {key}")
        return None
    if not isinstance(v, str):
        raise EntryError(f"{key} must be text")
    return v


def parse_entry(d: object) -> Entry:
    if not isinstance(d, dict):
        raise EntryError("not an object")
    path, sha = _text(d, "path"), _text(d, "sha256")
    if not path and not sha:
        raise EntryError("neither path nor sha256")
    if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise EntryError("sha256 is not 64 lower-case hex digits")
    reviewer = _text(d, "reviewer", required=True) or ""
    if not reviewer.strip():
        raise EntryError("empty reviewer")
    try:
        at = normalise_time(_text(d, "reviewed_at", required=True) or "")
    except ValueError:
        raise EntryError(f"reviewed_at is not an ISO 8601 time: {d.get('reviewed_at')!r}") from None
    if at > _latest_allowed():  # a future time would win every later import
        raise EntryError(f"reviewed_at is in the future: {d.get('reviewed_at')!r}")
    decision, cls = _text(d, "decision"), _text(d, "class")
    if decision is not None and decision not in DECISIONS:
        raise EntryError(f"unknown decision {decision!r} (known: {', '.join(DECISIONS)})")
    if decision == "override" and not cls:  # "agree" without a class agrees with the AI
        raise EntryError("an override needs the reviewer's class")
    marks = d.get("annotations")
    if marks is not None:
        if not isinstance(marks, list):
            raise EntryError("annotations must be a list")
        try:
            marks = [Annotation.from_dict(m) for m in marks]
        except AnnotationError as exc:
            raise EntryError(str(exc)) from None
    return Entry(
        path, sha, reviewer, at, decision, cls if decision != "uncertain" else None,
        _text(d, "ai_class"), _text(d, "note"), marks,
    )  # fmt: skip


def import_reviews(folder: Path, entries: list[Any]) -> ImportReport:
    from desktop.reviews_io import FolderFiles

    report = ImportReport()
    files = FolderFiles(Path(folder))
    with ReviewStore.for_folder(folder) as store:
        for k, raw in enumerate(entries):
            where = f"entry {k}" + (
                f" ({raw.get('path')})" if isinstance(raw, dict) and raw.get("path") else ""
            )
            try:
                e = parse_entry(raw)
                rel, how = files.find(e.path, e.sha256)
                if rel is None:
                    raise EntryError("no such image in the folder (by hash or path)")
                with store.transaction():
                    _merge(store, rel, e, report)
                report.by_path += bool(e.sha256) and how == "path"
            except (EntryError, ValueError) as exc:
                report.problems.append(f"{where}: {exc}; skipped")
    return report


def _state(store: ReviewStore, rel: str) -> tuple[Any, ...]:
    r = store.get(rel)
    return (
        r.decision if r else None,
        r.reviewer_class if r else None,
        r.note if r else "",
        dumps(store.annotations(rel)),
    )


def _latest_time(store: ReviewStore, rel: str) -> str | None:
    r = store.get(rel)
    times = [h[4] for h in store.history(rel)] + ([r.updated_at] if r else [])
    return max(times) if times else None


def _merge(store: ReviewStore, rel: str, e: Entry, report: ImportReport) -> None:
    cur_dec, cur_cls, cur_note, cur_marks = _state(store, rel)
    new_marks = None if e.marks is None else dumps(e.marks)
    differs = {
        "decision": e.decision is not None and e.decision != cur_dec,
        "reviewer_class": e.decision is not None and e.cls != cur_cls,
        "note": e.note is not None and e.note != cur_note,
        "annotations": new_marks is not None and new_marks != cur_marks,
    }
    latest = _latest_time(store, rel)
    if latest is None:
        report.new += 1
    elif any(differs.values()):
        report.conflicts += 1
    newer = latest is None or e.at > latest
    if newer:
        if e.decision is not None:
            r = store.get(rel)
            # the AI's class and probability stay what the store knew unless the entry says
            # otherwise (an "agree" without a class agrees with the AI's stored class)
            known_ai = r.ai_class if r else None
            ai = (e.cls or e.ai_class or known_ai) if e.decision == "agree" else None
            ai = ai or e.ai_class or known_ai
            prob = r.ai_probability if r is not None and ai == r.ai_class else None
            store.set_decision(
                rel,
                e.decision,
                reviewer=e.reviewer,
                reviewer_class=e.cls,
                ai_class=ai,
                ai_probability=prob,
                at=e.at,
            )
        if differs["note"]:
            store.set_note(rel, e.note or "", reviewer=e.reviewer, at=e.at)
        if differs["annotations"]:
            store.set_annotations(rel, e.marks or [], reviewer=e.reviewer, at=e.at)
        if latest is not None:
            report.updated += any(differs.values())
            report.unchanged += not any(differs.values())
        return
    # older than what the folder holds: the current state stays, this version goes into
    # the history; a decision is recorded even when it matches (who decided what)
    old = {"decision": cur_dec, "reviewer_class": cur_cls, "note": cur_note,
           "annotations": cur_marks}  # fmt: skip
    new = {"decision": e.decision, "reviewer_class": e.cls, "note": e.note,
           "annotations": new_marks}  # fmt: skip
    for name in ("decision", "reviewer_class", "note", "annotations"):
        confirms = (
            name in ("decision", "reviewer_class")
            and e.decision is not None
            and store.own_latest(rel, name, e.reviewer) != new[name]
        )
        if differs[name] or confirms:
            store.record_history(rel, name, old[name], new[name], reviewer=e.reviewer, at=e.at)
    if any(differs.values()):
        report.kept_in_history += 1
    else:
        report.unchanged += 1
