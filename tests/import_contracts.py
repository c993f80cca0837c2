"""An import-linter contract over module names, for the rules of STYLE.md that follow a
naming convention rather than a package tree: `api*` modules are routers, `_x` modules
are private, `models*` modules hold tables. Used by `lint-imports` through
`[tool.importlinter]` in pyproject.toml (`contract_types`).

Patterns are `fnmatch` patterns over full module names (`*` also crosses dots). External
packages appear under their top-level name (`fastapi`). Only direct imports are checked:
a router may reach a private module through its domain's service.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, cast

import grimp
from importlinter import Contract, ContractCheck, fields, output


def _matches(module: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(module, pattern) for pattern in patterns)


class NamePatternContract(Contract):
    """Modules matching `importers` (except those matching `except_importers`) import no
    module matching `forbidden`."""

    type_name = "name_patterns"

    importers = fields.ListField(subfield=fields.StringField())
    except_importers = fields.ListField(subfield=fields.StringField(), required=False)
    forbidden = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        # import-linter declares the fields as field objects and sets the parsed values.
        importers = cast(list[str], self.importers)
        exceptions = cast(list[str] | None, self.except_importers) or []
        forbidden = cast(list[str], self.forbidden)
        illegal: list[dict[str, Any]] = []
        for importer in sorted(graph.modules):
            if not _matches(importer, importers) or _matches(importer, exceptions):
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if _matches(imported, forbidden):
                    details = graph.get_import_details(importer=importer, imported=imported)
                    lines = sorted({detail["line_number"] for detail in details})
                    illegal.append({"importer": importer, "imported": imported, "lines": lines})
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["illegal"]:
            lines = ", ".join(str(line) for line in item["lines"])
            output.print_error(f"{item['importer']} -> {item['imported']} (l.{lines})", bold=False)
            output.new_line()
