"""The photo store's start-up clean-up: half-written files of a killed process go, nothing else does."""

from __future__ import annotations

from pathlib import Path

from bot.services.files import LocalFileStore


async def test_start_up_removes_a_killed_writers_half_files_and_keeps_stored_photos_and_own_writes(
    tmp_path: Path,
) -> None:
    earlier = LocalFileStore(tmp_path)  # the process that was killed
    kept = await earlier.put(b"photo bytes", ".jpg", "reports")
    left_behind = (tmp_path / kept).with_name(".abc.jpg.0123456789ab-ffff.tmp")
    left_behind.write_bytes(b"half a pho")

    now = LocalFileStore(tmp_path)  # the process starting now, already storing an upload
    writing = (tmp_path / kept).with_name(f".def.jpg.{now._mine}-eeee.tmp")
    writing.write_bytes(b"being written")

    assert await now.remove_temporaries() == 1
    assert not left_behind.exists()
    assert writing.exists()  # this process's own write under way is not cut
    assert await now.get(kept) == b"photo bytes"
