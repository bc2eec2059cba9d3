"""The Policies screen: the active policy's tools and their ordered rules, edited as a local
working copy and applied as a new version after a diff preview; history and rollback.

Keys move a rule within its tool (the product's drag-and-drop, on the keyboard), switch it
on or off (``enabled: false`` keeps it in the policy but the engine skips it) and edit its
CEL condition. The working copy is a :class:`tui.policy_draft.PolicyDraft`; every edit is
sent to the server's ``/policies/validate`` as you type (debounced), and its problems are
shown under the field, so the dashboard and the server never disagree on what is valid.
Applying validates again, shows the server's ``/policies/diff`` and applies only on
confirmation; an invalid working copy is never applied. Only admins may apply or roll back:
anyone else gets the server's refusal in the one error modal.
"""

from __future__ import annotations

import asyncio

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from hub.api_client.errors import http_note
from hub.errors import PolicyError, PreloopError, Problem
from tui.policy_draft import PolicyDraft, RulePath
from tui.screens.base import DashboardScreen, row_key
from tui.screens.policy_dialogs import DiffModal, HistoryModal

VALIDATE_AFTER = 0.4  # seconds of quiet typing before the working copy is validated
APPLY_COMMENT = "applied from the dashboard"

COLUMNS = (("tool", "Tool"), ("n", "#"), ("on", "On"), ("action", "Action"),
           ("condition", "Condition"))  # fmt: skip


class PoliciesScreen(DashboardScreen):
    HELP_SECTION = "Policies"
    CSS_PATH = "policies.tcss"
    BINDINGS = [
        Binding("shift+up,ctrl+up", "move(-1)", "Rule up", tooltip="Move rule up"),
        Binding("shift+down,ctrl+down", "move(1)", "Rule down", tooltip="Move rule down"),
        Binding("space", "switch_rule", "On/off", tooltip="Rule on/off"),
        Binding("e", "edit", "Edit", tooltip="Edit condition"),
        Binding("escape", "leave_editor", "Back to the rules (from the condition)", show=False),
        Binding("a", "apply", "Apply", tooltip="Apply (diff first)"),
        Binding("h", "history", "History", tooltip="History/rollback"),
        Binding("r", "reload", "Reload", tooltip="Reload policy"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.draft: PolicyDraft | None = None
        self.problems: list[Problem] | None = []  # None: not checked since the last edit

    def compose_body(self) -> ComposeResult:
        with Vertical(id="policies"):
            table: DataTable[str] = DataTable(id="rules", cursor_type="row", zebra_stripes=True)
            table.border_title = "Policy"
            yield table
            with Vertical(id="rule-editor"):
                yield Input(placeholder="CEL condition (empty: always matches)", id="expression")
                yield Static("", id="expression-problems")

    def on_mount(self) -> None:
        table = self.query_one("#rules", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self.reload()

    # -- workers (all I/O) ----------------------------------------------------------------

    @work(group="policies-load", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        try:
            active = await self.preloop.client.export_policy()
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        try:
            self.draft = PolicyDraft(active.source, active.version)
        except PolicyError as exc:  # the server's own export: only if dashboard and server differ
            message = "; ".join(p.message for p in exc.problems[:3])
            self.preloop.show_error(
                PreloopError(f"The active policy could not be read: {message}", title="Unreadable")
            )
            return
        self.problems = []
        self._render_rules()
        self._fill_editor()

    @work(group="policies-validate", exclusive=True, exit_on_error=False)
    async def validate(self) -> None:
        """Validate the working copy once typing pauses (a newer call cancels this one)."""
        await asyncio.sleep(VALIDATE_AFTER)
        if self.draft is None:
            return
        try:
            checked = await self.preloop.client.validate_policy(self.draft.source())
        except PreloopError as exc:
            if http_note(exc):  # refused by the server: the error modal
                self.preloop.show_error(exc)
            else:  # unreachable: said under the field, not a modal per pause in typing
                self.query_one("#expression-problems", Static).update(
                    f"? not checked: {exc.title.lower()} (checked again on the next edit)"
                )
            return
        self.problems = list(checked.problems)
        self._show_problems()

    @work(group="policies-preview", exclusive=True, exit_on_error=False)
    async def preview(self) -> None:
        """Validate, then show the diff; apply on confirmation."""
        draft = self.draft
        if draft is None:
            return
        source = draft.source()
        client = self.preloop.client
        try:
            checked = await client.validate_policy(source)
            self.problems = list(checked.problems)
            self._show_problems()
            if not checked.valid:
                count = len(checked.problems)
                self.notify(
                    f"Not applied: the policy has {count} problem(s); fix them first.",
                    severity="error",
                )
                return
            diff = await client.diff_policy(source)
            active = await client.export_policy()
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        if not diff.changed:
            self.notify("Nothing to apply: the working copy is the active policy.")
            return

        def confirmed(answer: bool | None) -> None:
            if answer:
                self.apply(source)

        # The diff is against the version active now: if someone applied another one since
        # the working copy was loaded, the preview says so (their changes show as undone).
        preview = DiffModal(diff.diff, active.version, started_from=draft.version)
        self.app.push_screen(preview, confirmed)

    @work(exit_on_error=False)  # never cancelled by another action: it changes the server
    async def apply(self, source: str) -> None:
        try:
            result = await self.preloop.client.apply_policy(source, APPLY_COMMENT)
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.notify(f"Applied as version {result.version}.")
        self.reload()

    @work(group="policies-history", exclusive=True, exit_on_error=False)
    async def history(self) -> None:
        try:
            versions = await self.preloop.client.policy_versions()
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.app.push_screen(HistoryModal(versions), self._rollback_chosen)

    @work(exit_on_error=False)  # never cancelled by another action: it changes the server
    async def rollback(self, version: int) -> None:
        try:
            result = await self.preloop.client.rollback_policy(version)
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.notify(f"Version {version} applied again as version {result.version}.")
        self.reload()

    # -- actions --------------------------------------------------------------------------

    def action_move(self, by: int) -> None:
        at = self._selected_rule()
        if self.draft is None or at is None:
            return
        moved = self.draft.move(at, by)
        if moved is None:
            self.notify("The rule is already " + ("first." if by < 0 else "last."))
            return
        self._edited(moved)

    def action_switch_rule(self) -> None:
        at = self._selected_rule()
        if self.draft is None or at is None:
            return
        enabled = self.draft.toggle(at)
        self._edited(at)
        self.notify(f"Rule {at.rule + 1} {'enabled' if enabled else 'disabled'} (not applied).")

    def action_edit(self) -> None:
        if self._selected_rule() is not None:
            self.query_one("#expression", Input).focus()
        elif self.draft is not None:
            self.notify("This tool has no rules to edit.", severity="warning")

    def action_leave_editor(self) -> None:
        self.query_one("#rules", DataTable).focus()

    def action_apply(self) -> None:
        if self.draft is None:
            return
        if not self.draft.dirty:
            self.notify("Nothing to apply: no changes yet.")
            return
        self.preview()

    def action_history(self) -> None:
        self.history()

    def action_reload(self) -> None:
        if self.draft is None or not self.draft.dirty:
            self.reload()
            return
        self.confirm("Discard your changes and reload?", "Discard", self.reload)

    def _rollback_chosen(self, version: int | None) -> None:
        if version is None:
            return
        question = f"Roll back to version {version}? It is applied again as a new version."
        if self.draft is not None and self.draft.dirty:
            question += " Your changes that are not applied are discarded."
        self.confirm(question, "Roll back", lambda: self.rollback(version))

    # -- the condition editor -------------------------------------------------------------

    @on(Input.Changed, "#expression")
    def _typed(self, event: Input.Changed) -> None:
        at = self._selected_rule()
        if self.draft is None or at is None or not event.input.has_focus:
            return  # filled in by the screen, not typed
        if (self.draft.rule(at).expression or "") == event.value.strip():
            return
        self.draft.set_expression(at, event.value)
        self._render_rules()
        self._edited_only()

    @on(Input.Submitted, "#expression")
    def _submitted(self) -> None:
        self.action_leave_editor()

    def _edited(self, at: RulePath) -> None:
        self._render_rules(select=at)
        self._edited_only()

    def _edited_only(self) -> None:
        self.problems = None
        self._show_problems()
        self.validate()

    def _fill_editor(self) -> None:
        field = self.query_one("#expression", Input)
        at = self._selected_rule()
        if self.draft is None or at is None:
            field.value, field.disabled = "", True
            field.border_title = ""
        else:
            field.disabled = False
            field.value = self.draft.rule(at).expression or ""
        editor = self.query_one("#rule-editor")
        editor.border_title = (
            f"Condition of {self.draft.tool(at.tool).label}, rule {at.rule + 1}  (e: edit)"
            if self.draft is not None and at is not None
            else "Condition (select a rule)"
        )
        self._show_problems()

    def _show_problems(self) -> None:
        shown = self.query_one("#expression-problems", Static)
        shown.remove_class("-valid", "-invalid")
        if self.problems is None:
            shown.update("… checking")
            return
        if not self.problems:
            dirty = self.draft is not None and self.draft.dirty
            shown.update("✓ valid; a: apply" if dirty else "✓ valid; no changes")
            shown.add_class("-valid")
            return
        at = self._selected_rule()
        here = [p for p in self.problems if at is not None and _about(p, at)]
        elsewhere = len(self.problems) - len(here)
        lines = [f"✕ {p.message}" for p in here]
        if elsewhere:
            first = next(p for p in self.problems if p not in here)
            where = f" ({first.key})" if first.key else ""
            lines.append(f"✕ {elsewhere} problem(s) elsewhere, first{where}: {first.message}")
        shown.update("\n".join(lines))
        shown.add_class("-invalid")

    # -- rendering ------------------------------------------------------------------------

    def _selected_rule(self) -> RulePath | None:
        return _path_of(row_key(self.query_one("#rules", DataTable)))

    def _render_rules(self, select: RulePath | None = None) -> None:
        draft = self.draft
        table = self.query_one("#rules", DataTable)
        keep = table.cursor_row
        table.clear()
        if draft is None:
            return
        for ti, tool in enumerate(draft.document.tools):
            if not tool.conditions:
                fallback = tool.action or draft.document.effective_defaults.action
                table.add_row(tool.label, "-", "", fallback.value, "(no rules)", key=f"t{ti}")
            for ri, rule in enumerate(tool.conditions):
                table.add_row(
                    tool.label if ri == 0 else "",
                    str(ri + 1),
                    "on" if rule.enabled else "off",
                    rule.action.value,
                    rule.expression or "(always)",
                    key=f"r{ti}.{ri}",
                )
        if select is not None:
            table.move_cursor(row=table.get_row_index(f"r{select.tool}.{select.rule}"))
        elif table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        name = draft.document.metadata.name
        table.border_title = f"Policy {name} · version {draft.version}"
        table.border_subtitle = "modified, not applied" if draft.dirty else "as applied"

    @on(DataTable.RowHighlighted, "#rules")
    def _highlighted(self) -> None:
        if not self.query_one("#expression", Input).has_focus:
            self._fill_editor()


def _path_of(key: str | None) -> RulePath | None:
    if key is None or not key.startswith("r"):
        return None
    tool, rule = key[1:].split(".")
    return RulePath(int(tool), int(rule))


def _about(problem: Problem, at: RulePath) -> bool:
    key = problem.key or ""
    return key == at.key or key.startswith(at.key + ".")
