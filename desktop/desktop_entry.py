"""Install a freedesktop launcher so the app starts with a double-click (Linux desktops).

Writes ``~/.local/share/applications/cxr-review.desktop`` and the icon into
the user's hicolor theme; nothing needs root. Standard library only, so the
launcher can run it before Qt is imported.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from desktop.paths import RESOURCES

ICON = RESOURCES / "icons" / "cxr-review.svg"


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _executable() -> str:
    found = shutil.which("cxr-review")
    if found:
        return str(Path(found).resolve())
    return f"{Path(sys.executable).resolve()} -m desktop"


def desktop_entry_text(exec_cmd: str, icon: str) -> str:
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Version=1.5",
            "Name=cxr-review",
            "GenericName=Chest X-ray review (research use only)",
            "Comment=Review chest X-rays with an AI classifier and Grad-CAM heatmaps. Not a medical device.",
            f"Exec={exec_cmd} %F",
            f"Icon={icon}",
            "Terminal=false",
            "Categories=Science;MedicalSoftware;Graphics;",
            "MimeType=inode/directory;image/png;application/dicom;",
            "StartupWMClass=cxr-review",
            "",
        ]
    )


def install_desktop_entry() -> Path:
    """Returns the path of the written .desktop file."""
    data = _data_home()
    icon_dir = data / "icons" / "hicolor" / "scalable" / "apps"
    icon_dir.mkdir(parents=True, exist_ok=True)
    icon_path = icon_dir / "cxr-review.svg"
    shutil.copyfile(ICON, icon_path)
    apps = data / "applications"
    apps.mkdir(parents=True, exist_ok=True)
    entry = apps / "cxr-review.desktop"
    entry.write_text(desktop_entry_text(_executable(), str(icon_path)), encoding="utf-8")
    entry.chmod(0o755)
    return entry
