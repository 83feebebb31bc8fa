"""The README's table of MNIST_* variables, generated from service/settings.py.

    python -m service.settings_table           # print the table
    python -m service.settings_table --write   # replace the README's block with it

A test renders the table again and compares it with the README's block.
"""

from __future__ import annotations

from pathlib import Path

from core.docblocks import block_command
from service.settings import PREFIX, Settings

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = "settings"


def _shown(name: str, value: object) -> str:
    if name == "workers":
        return "0 (auto)"
    if isinstance(value, bool):
        return str(int(value))
    return str(value) if value != () else "(auto)"


def markdown_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `{PREFIX}{name.upper()}` | {_shown(name, field.default)} | "
                    f"{field.description} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    return block_command(README, BLOCK, markdown_table, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
