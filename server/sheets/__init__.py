"""Excel import and export of the grid tree and of people (网格树与人员的 Excel 导入导出)."""

from .book import PEOPLE_HEADERS, TREE_HEADERS, ImportResult, RowError, error_report
from .people import export_people, import_people, people_template
from .tree import export_tree, import_tree, tree_template

__all__ = [
    "PEOPLE_HEADERS", "TREE_HEADERS", "ImportResult", "RowError", "error_report",
    "export_people", "import_people", "people_template", "export_tree", "import_tree", "tree_template",
]
