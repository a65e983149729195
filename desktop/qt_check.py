"""Can Qt start here, on the platform the app will use? If not, which Debian packages fix it.

Standard library only, and Qt is started in a child process: a Qt whose platform plugin
cannot load aborts the whole process (there is no exception to catch), and the same module
serves ``make qt-check`` and the launcher, which must still be able to explain the failure.

``python -m desktop.qt_check [--platform NAME]`` exits 0 when Qt starts, else prints why
and the ``apt-get install`` line, and exits 1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: shared library (soname) → Debian/Ubuntu package, for the libraries PySide6's Qt loads
#: itself (Core, Gui, Widgets, DBus) and through its xcb and wayland platform plugins
SONAME_PACKAGES = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
}

#: every package above, in one line: the same fix whichever desktop session is used later
APT_PACKAGES = tuple(dict.fromkeys(SONAME_PACKAGES.values()))
APT_LINE = "sudo apt-get install -y " + " ".join(APT_PACKAGES)

#: the platforms this check knows how to tell apart (anything else is tried as given)
PLATFORMS = ("xcb", "wayland", "offscreen")

_CHILD = (
    "import sys\n"
    "from PySide6.QtWidgets import QApplication\n"
    "app = QApplication(sys.argv[:1])\n"
    "print(app.platformName())\n"
)
# "libxcb-icccm.so.4: cannot open shared object file", "(/x/libxcb-icccm.so.4: file too short)"
_SONAME = re.compile(r"(?:^|[\s(/])(lib[\w+-]+(?:\.[\w+-]+)*?\.so(?:\.\d+)*):\s")
_PATH = re.compile(r"/[^\s\"':]*/([^/\s\"':]+)")  # a library's folder says nothing here
_NO_DISPLAY = re.compile(r"could not connect to display|failed to create wl_display", re.I)


def platform_in_use(env: Mapping[str, str] | None = None) -> str:
    """The platform Qt will pick: QT_QPA_PLATFORM when set, wayland in a Wayland session,
    xcb with an X display, else offscreen (a machine without a display)."""
    env = os.environ if env is None else env
    chosen = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen
    if env.get("WAYLAND_DISPLAY"):
        return "wayland"
    if env.get("DISPLAY"):
        return "xcb"
    return "offscreen"


def missing_libraries(text: str) -> list[str]:
    """Sonames a loader error in ``text`` names, Qt's own libraries and plugins left out."""
    found = []
    for name in _SONAME.findall(text):
        if name.startswith(("libQt", "libq", "libpyside", "libshiboken")) or name in found:
            continue
        found.append(name)
    return found


def failure_message(
    platform: str, output: str, env: Mapping[str, str] | None = None, quote: bool = True
) -> str:
    """Why Qt could not start on ``platform``, given what the attempt printed, and the fix;
    ``quote``: end with the lines of Qt's output that say why."""
    env = os.environ if env is None else env
    where = {
        "xcb": f" (X display {env.get('DISPLAY', 'unset')!s})",
        "wayland": f" (Wayland display {env.get('WAYLAND_DISPLAY', 'unset')!s})",
    }.get(platform, "")
    lines = [f"Qt cannot start on the {platform} platform{where}."]
    missing = missing_libraries(output)
    if missing:
        named = ", ".join(f"{m} (package {SONAME_PACKAGES.get(m, '?')})" for m in missing)
        lines.append(f"Missing system libraries: {named}.")
    elif _NO_DISPLAY.search(output):
        lines.append(
            "The display cannot be reached: start the app inside a desktop session, or "
            "set QT_QPA_PLATFORM=offscreen for a run without a screen."
        )
    if missing or not _NO_DISPLAY.search(output):
        lines += ["Install the libraries Qt needs with:", f"  {APT_LINE}"]
    said = [_PATH.sub(r"\1", x.strip())[:300] for x in output.splitlines() if _worth_showing(x)]
    said = said[-3:] if quote else []
    if said:
        lines.append("Qt said: " + " | ".join(said))
    return "\n".join(lines)


def _worth_showing(line: str) -> bool:
    line = line.strip()
    if not line or line.startswith(("QFactoryLoader", "Found metadata", "Got keys", "checking")):
        return False
    # Qt's "xcb-cursor0 … is needed" hint comes with every xcb failure: the loader names the
    # library that is really missing
    return any(w in line.lower() for w in ("cannot", "could not", "error", "failed"))


@dataclass(frozen=True)
class QtCheck:
    platform: str
    ok: bool
    output: str  # what the attempt printed

    def message(self, quote: bool = True) -> str:
        """Empty when Qt started, else :func:`failure_message`."""
        return "" if self.ok else failure_message(self.platform, self.output, quote=quote)


def check_qt(platform: str | None = None, timeout: float = 120.0) -> QtCheck:
    """Start a QApplication on ``platform`` (default: :func:`platform_in_use`) in a child."""
    platform = platform or platform_in_use()
    env = dict(os.environ, QT_QPA_PLATFORM=platform, QT_DEBUG_PLUGINS="1")
    try:
        r = subprocess.run(
            [sys.executable, "-c", _CHILD],
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return QtCheck(platform, False, f"error: Qt did not start within {timeout:.0f} s")
    return QtCheck(platform, r.returncode == 0, r.stdout + r.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m desktop.qt_check",
        description="Check that Qt starts on the platform the app will use.",
    )
    p.add_argument("--platform", help="xcb, wayland, offscreen… (default: what Qt would pick)")
    args = p.parse_args(argv)
    result = check_qt(args.platform)
    if result.ok:
        print(f"qt-check: Qt starts on the {result.platform} platform")
        return 0
    print(result.message(), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
