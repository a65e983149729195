"""The review session: one folder, one model, their results and the reviewer's decisions.

Qt-free: the window's controllers feed it the workers' messages and render
what it holds; tests drive it without a display.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from desktop.folder_model import attention_summary, visible_rows
from desktop.folder_pass import FolderItem
from desktop.messages import AttentionDone, AttentionRequest, Batch, KnownAttention, ModelReady
from desktop.review_store import ReviewStore
from export.attention import Attention
from export.bundle import Manifest
from export.explain import ImageInput
from export.files import safe_name
from export.results import FileKey, ImageResult, results_key

#: consecutive background Grad-CAM failures that stop the attention pass (the model or the
#: child process is broken, not the images)
MAX_ATTENTION_FAILURES = 3


@dataclass(frozen=True)
class AttentionUpdate:
    """What one attention result changed."""

    index: int | None  # the entry updated (None: the result was stale and dropped)
    stopped: str | None = None  # the pass was stopped, and why


class ReviewSession:
    def __init__(self) -> None:
        self.folder: Path | None = None
        self.store: ReviewStore | None = None
        self.entries: list[ImageResult] = []
        self.bundle: Path | None = None
        self.manifest: Manifest | None = None
        self.provider = ""
        self.current: int | None = None
        self.classifying = False
        self.cached_hits = 0  # results taken from the prediction cache
        self._images: dict[int, ImageInput] = {}  # kept by the folder pass for attention
        self.attention_pass = 0  # bumped per folder/model: late results are dropped
        self._attention_failures = 0
        #: images the reviewer inverted for the model (rel paths, from the review store)
        self.inverted: set[str] = set()

    # ------------------------------------------------------------------ folder and model

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.manifest.class_names) if self.manifest is not None else ()

    @property
    def model_sha(self) -> str:
        return "" if self.manifest is None else results_key(self.manifest)

    @property
    def cache_path(self) -> Path | None:
        return None if self.store is None else self.store.path.parent / "predictions.sqlite"

    def open_folder(
        self, folder: Path, files: list[Path], store: ReviewStore, reviews: dict
    ) -> None:
        """Replace the folder; ``reviews`` were read from ``store`` by the caller, which
        refuses the folder when they cannot be read."""
        if self.store is not None and self.store is not store:
            self.store.close()
        self.folder, self.store = folder, store
        self.inverted = store.inverted_images()
        self.entries = []
        for p in files:
            rel = safe_name(p.relative_to(folder).as_posix())
            self.entries.append(ImageResult(p, rel, FileKey.of(p), review=reviews.get(rel)))
        self.current = None
        self._images.clear()
        self.attention_pass += 1

    def set_bundle(self, bundle: Path) -> None:
        """Another model: the old one's results go at once (its classes are not this one's)."""
        self.bundle, self.manifest, self.provider = Path(bundle), None, ""
        self._forget_results()

    def _forget_results(self) -> None:
        for e in self.entries:
            e.probabilities, e.error, e.attention, e.novelty = None, None, None, None
        self._images.clear()

    def folder_items(self) -> list[FolderItem]:
        return [
            FolderItem(e.path, e.rel_path, e.key or FileKey.of(e.path), e.rel_path in self.inverted)
            for e in self.entries
        ]

    def start_classification(self) -> None:
        self._forget_results()
        self.attention_pass += 1
        self._attention_failures = 0
        self.classifying = True

    def model_ready(self, msg: ModelReady) -> None:
        self.manifest, self.provider = msg.manifest, msg.provider

    def apply(self, msg: Batch | KnownAttention) -> list[int]:
        """A worker message into the entries; returns the indices that changed."""
        if isinstance(msg, KnownAttention):
            for i, att in msg.items:
                self.entries[i].attention = att
            return [i for i, _ in msg.items]
        if msg.from_cache:
            self.cached_hits += len(msg.items)
        for c in msg.items:
            self.entries[c.index].set_outcome(c.probabilities, c.error)
            self.entries[c.index].novelty = c.novelty
            if c.image is not None:
                self._images[c.index] = c.image
        return [c.index for c in msg.items]

    def image_input(self, i: int) -> ImageInput | None:
        return self._images.get(i)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    # ------------------------------------------------------------------ attention pass

    def attention_requests(self) -> list[AttentionRequest]:
        """Grad-CAM of every classified image not yet checked (the list's measure)."""
        if self.bundle is None or self.manifest is None:
            return []
        return [
            AttentionRequest(
                self.bundle,
                self.model_sha,
                self.attention_pass,
                i,
                e.rel_path,
                e.path,
                e.key or FileKey.of(e.path),
                int(e.predicted_index),
                self._images.get(i),
                self.manifest.input,
                e.rel_path in self.inverted,
            )
            for i, e in enumerate(self.entries)
            if e.probabilities is not None and e.attention is None
        ]

    def apply_attention(self, done: AttentionDone) -> AttentionUpdate:
        req = done.request
        i = req.index
        if (
            req.pass_id != self.attention_pass
            or i >= len(self.entries)
            or self.entries[i].rel_path != req.rel_path
            or self.entries[i].key != req.file
        ):
            return AttentionUpdate(None)  # another folder, model or file version by now
        self._images.pop(i, None)
        self.entries[i].attention = done.attention
        if not done.failed:
            self._attention_failures = 0
            return AttentionUpdate(i)
        self._attention_failures += 1
        if self._attention_failures < MAX_ATTENTION_FAILURES:
            return AttentionUpdate(i)
        why = done.attention.error or "Grad-CAM failed"
        for e in self.entries:  # counted as checked: nothing waits for a broken model
            if e.probabilities is not None and e.attention is None:
                e.attention = Attention.not_checked("attention check stopped")
        self._images.clear()
        return AttentionUpdate(i, stopped=why)

    def attention_summary(self, min_lung_share: float) -> tuple[int, int, int]:
        return attention_summary(self.entries, min_lung_share)

    def all_checked(self) -> bool:
        """Every classified image has its attention (asked after each result: stops at the
        first image without one)."""
        return not self.classifying and all(
            e.attention is not None for e in self.entries if e.probabilities is not None
        )

    # ------------------------------------------------------------------ rows

    def rows(
        self, filter_name: str, sort_name: str, uncertain_below: float, min_lung_share: float
    ) -> list[int]:
        return visible_rows(
            self.entries,
            self.class_names,
            filter_name=filter_name,
            sort_name=sort_name,
            uncertain_below=uncertain_below,
            min_lung_share=min_lung_share,
        )

    # ------------------------------------------------------------------ reviews

    def decide(self, i: int, decision: str, reviewer_class: str | None, reviewer: str) -> str:
        """Record a decision for entry ``i``; returns the status line (saved or why not).

        ``decision``: "agree", "override" (with ``reviewer_class``), "uncertain", or
        "clear". Overriding to the AI's own class is an agreement.
        """
        if self.store is None:
            return "No folder is open."
        e = self.entries[i]
        ai = e.predicted(self.class_names) if self.class_names else None
        if decision == "clear":  # back to "not reviewed"; the history keeps what it was
            if e.review is None or e.review.decision is None:
                return f"{e.rel_path}: no decision to clear"
            try:
                e.review = self.store.set_decision(e.rel_path, None, reviewer=reviewer)
            except Exception as exc:
                return f"Could not save the review: {exc}"
            return f"Cleared the decision on {e.rel_path}"
        if decision == "agree" and ai is None:
            return "Nothing to agree with yet: the image is not classified."
        if decision == "override" and reviewer_class == ai:
            decision = "agree"
        try:
            e.review = self.store.set_decision(
                e.rel_path,
                decision,
                reviewer=reviewer,
                reviewer_class=reviewer_class,
                ai_class=ai,
                ai_probability=e.confidence,
            )
        except Exception as exc:
            return f"Could not save the review: {exc}"
        from desktop.folder_model import review_status

        return f"Saved: {e.rel_path} {review_status(e.review)}"

    def set_inverted(self, i: int, invert: bool) -> str:
        """Remember that entry ``i``'s file has inverted polarity (or not); the model and the
        display then see it flipped. Returns the status line. Its results must be computed
        again: an inverted image is another input."""
        if self.store is None or i >= len(self.entries):
            return "No folder is open."
        rel = self.entries[i].rel_path
        try:
            self.store.set_inverted(rel, invert)
        except Exception as exc:
            return f"Could not save the setting: {exc}"
        (self.inverted.add if invert else self.inverted.discard)(rel)
        if invert:
            return f"{rel}: inverted for the model and the display"
        return f"{rel}: shown and classified as stored"

    def saved_note(self, i: int) -> str:
        e = self.entries[i]
        return e.review.note if e.review else ""

    def save_note(self, i: int, text: str, reviewer: str) -> str | None:
        """Store the note of entry ``i`` when it changed; the status line, or None."""
        if self.store is None or i >= len(self.entries) or text == self.saved_note(i):
            return None
        e = self.entries[i]
        try:
            e.review = self.store.set_note(e.rel_path, text, reviewer=reviewer)
        except Exception as exc:
            return f"Could not save the note: {exc}"
        return f"Note saved for {e.rel_path}"
