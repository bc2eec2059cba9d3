"""How the dashboard's screens are built (decision 0083): every screen in ``tui/screens`` is a
:class:`~tui.screens.base.DashboardScreen` (or a dialog), no class of the dashboard writes its
styles inline, each ``.tcss`` file beside a screen styles only the screens that load it, and
every ``CSS_PATH`` names a file that exists and that a wheel ships (``package-data``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import tomllib
from pathlib import Path, PurePath
from types import ModuleType

import pytest
from textual.app import App
from textual.css.stylesheet import Stylesheet
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen

import tui
from tui.screens import MAIN_SCREENS
from tui.screens.base import DashboardScreen

REPO = Path(__file__).parents[2]


def _modules() -> list[ModuleType]:
    names = [info.name for info in pkgutil.walk_packages(tui.__path__, "tui.")]
    return [importlib.import_module(name) for name in ["tui", *names]]


def _classes(base: type) -> list[type]:
    """The subclasses of ``base`` that the dashboard's modules define."""
    return [
        cls
        for module in _modules()
        for cls in vars(module).values()
        if inspect.isclass(cls) and issubclass(cls, base) and cls.__module__ == module.__name__
    ]


def _css_paths(cls: type[App[object] | Screen[object]]) -> list[Path]:
    """The files ``cls.CSS_PATH`` names, resolved as Textual does: beside the class's module."""
    declared = cls.CSS_PATH
    if declared is None:
        return []
    paths = [declared] if isinstance(declared, str | PurePath) else list(declared)
    return [(Path(inspect.getfile(cls)).parent / path).resolve() for path in paths]


def _packaged(path: Path) -> bool:
    """Whether ``package-data`` in pyproject.toml puts ``path`` in the wheel."""
    with (REPO / "pyproject.toml").open("rb") as file:
        package_data = tomllib.load(file)["tool"]["setuptools"]["package-data"]
    for package, patterns in package_data.items():
        folder = REPO.joinpath(*package.split("."))
        if any(path in folder.glob(pattern) for pattern in patterns):
            return True
    return False


def _name(path: Path) -> str:
    return path.name


def test_every_screen_is_a_dashboard_screen_or_a_dialog() -> None:
    screens = [cls for cls in _classes(Screen) if cls.__module__.startswith("tui.screens.")]
    assert len(screens) > len(MAIN_SCREENS)  # the walk found them
    stray = [
        cls.__qualname__
        for cls in screens
        if cls is not DashboardScreen and not issubclass(cls, DashboardScreen | ModalScreen)
    ]
    assert [] == stray
    makers = [main.make for main in MAIN_SCREENS]
    assert all(inspect.isclass(make) and issubclass(make, DashboardScreen) for make in makers)


def test_no_class_of_the_dashboard_writes_its_styles_inline() -> None:
    inline = [
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls in _classes(DOMNode)
        for name in ("CSS", "DEFAULT_CSS")
        if cls.__dict__.get(name, "").strip()
    ]
    assert [] == inline


def test_every_css_path_exists_and_is_in_the_wheel() -> None:
    loaders = [cls for cls in _classes(DOMNode) if "CSS_PATH" in cls.__dict__]
    assert len(loaders) > len(MAIN_SCREENS)  # the app, the main screens, the policy dialogs
    paths = {path for cls in loaders for path in _css_paths(cls)}
    assert [] == sorted(str(path) for path in paths if not path.is_file())
    assert [] == sorted(str(path.relative_to(REPO)) for path in paths if not _packaged(path))
    # And no .tcss file is left that nothing loads.
    assert sorted((REPO / "tui").rglob("*.tcss")) == sorted(paths)


@pytest.mark.parametrize("path", sorted((REPO / "tui" / "screens").glob("*.tcss")), ids=_name)
def test_a_screen_file_styles_only_the_screens_that_load_it(path: Path) -> None:
    """Textual adds a screen's CSS_PATH to the app-wide stylesheet: each rule starts with the
    class name of a screen that loads the file, so it never reaches another screen."""
    owners = {cls.__name__ for cls in _classes(Screen) if path in _css_paths(cls)}
    assert owners, f"{path.name}: no screen loads it"
    stylesheet = Stylesheet(variables=App().get_css_variables())
    stylesheet.read(path)
    stylesheet.parse()
    starts = {
        selectors.selectors[0].name for rule in stylesheet.rules for selectors in rule.selector_set
    }
    assert owners >= starts
