import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import hasten.methods.catalogue as catalogue
from hasten.cli.main import cli
from hasten.methods import all_methods
from hasten.methods.card import ACTIONS, COMPONENTS

REPO = Path(__file__).resolve().parents[2]


def run(*args):
    return CliRunner().invoke(cli, ["methods", *args])


def _rows(output):
    header, *rows = [line.split("\t") for line in output.strip().splitlines()]
    return header, rows


def test_table_lists_every_method_with_the_taxonomy_columns():
    result = run()
    assert result.exit_code == 0, result.output
    header, rows = _rows(result.output)
    assert header == ["name", "component", "action", "mechanism", "bottleneck", "summary"]
    assert sorted(r[0] for r in rows) == sorted(e.name for e in all_methods())
    cards = {e.name: e.card for e in all_methods()}
    for name, component, action, mechanism, bottleneck, summary in rows:
        card = cards[name]
        assert (component, action, mechanism, summary) == (card.component, card.action, card.mechanism, card.summary)
        assert bottleneck.split(",") == list(card.bottleneck)


@pytest.mark.parametrize("option, value, column", [("--component", "optimization", 1), ("--action", "replace", 2)])
def test_filters_keep_only_matching_methods(option, value, column):
    _, rows = _rows(run(option, value).output)
    expected = [e.name for e in all_methods() if getattr(e.card, option[2:]) == value]
    assert [r[0] for r in rows] == expected and all(r[column] == value for r in rows)
    assert expected  # the filter is not vacuous


def test_bottleneck_filter_and_combined_filters():
    _, rows = _rows(run("--bottleneck", "memory").output)
    assert rows and all("memory" in r[4].split(",") for r in rows)
    _, rows = _rows(run("--component", "optimization", "--action", "augment").output)
    assert {"ema", "sam", "swa", "lookahead"} <= {r[0] for r in rows}
    assert all(r[1] == "optimization" and r[2] == "augment" for r in rows)


@pytest.mark.parametrize(
    "option, accepted",
    [
        ("--component", COMPONENTS),
        ("--action", ACTIONS),
        ("--bottleneck", ("data", "host", "memory", "compute", "communication")),
    ],
)
def test_bad_filter_values_get_one_line_listing_accepted_values_and_exit_2(option, accepted):
    result = run(option, "nonsense")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "'nonsense'" in lines[0] and "accepted: " + ", ".join(accepted) in lines[0]


def test_json_prints_the_cards():
    cards = json.loads(run("--json", "--component", "optimization").output)
    assert {c["name"] for c in cards} >= {
        "precision",
        "ema",
        "swa",
        "sam",
        "lookahead",
        "muon",
        "scale_schedule",
        "gradient_clipping",
    }
    sam = next(c for c in cards if c["name"] == "sam")
    assert sam["paper"]["arxiv"] == "2010.01412" and sam["defaults"] == {"rho": 0.05, "interval": 1}
    assert sam["measured"] == [] or isinstance(sam["measured"], list)
    single = json.loads(run("ema", "--json").output)
    assert single["name"] == "ema" and "swa" in single["conflicts"]


def test_gaps_matrix_counts_methods_and_marks_empty_cells():
    data = json.loads(run("--gaps", "--json").output)
    expected = {
        c: {a: sorted(e.name for e in all_methods() if (e.card.component, e.card.action) == (c, a)) for a in ACTIONS}
        for c in COMPONENTS
    }
    assert {c: {a: sorted(v) for a, v in row.items()} for c, row in data["matrix"].items()} == expected
    assert data["gaps"] == [[c, a] for c in COMPONENTS for a in ACTIONS if not expected[c][a]]
    assert data["gaps"]  # the taxonomy has research gaps
    header, *rows = [line.split("\t") for line in run("--gaps").output.strip().splitlines()[1:-1]]
    assert header == ["component", *ACTIONS]
    for component, *cells in rows:
        for action, cell in zip(ACTIONS, cells):
            count = len(expected[component][action])
            assert cell == (str(count) if count else "-- gap")
    assert run("--gaps").output.strip().splitlines()[-1].startswith(f"research gaps ({len(data['gaps'])}): ")


def test_one_card_in_full_says_not_measured_yet_without_results(monkeypatch, tmp_path):
    monkeypatch.setattr(catalogue, "RESULTS_PATH", tmp_path / "absent.json")
    output = run("swa").output
    for label in (
        "summary:",
        "paper:",
        "taxonomy:",
        "when:",
        "bottleneck relieved:",
        "touches:",
        "conflicts:",
        "checkpoint/resume:",
        "export:",
        "defaults:",
        "CLI:",
        "functional form:",
        "expected effect:",
        "not worth it when:",
        "measured:",
    ):
        assert label in output
    assert "arXiv:1803.05407" in output and "ema: both replace" in output
    assert "--method swa:start=0.75dur,update_interval=1ep,swa_lr_factor=None" in output
    assert "measured:            not measured yet" in output


def test_card_shows_measured_results_when_the_file_has_them(monkeypatch, tmp_path):
    path = tmp_path / "results.json"
    path.write_text(
        json.dumps(
            {
                "sam": [
                    {
                        "workload": "cifar10",
                        "speedup": 1.234,
                        "ci_low": 1.1,
                        "ci_high": 1.35,
                        "status": "measured",
                        "machine": "1x H100",
                        "date": "2026-01-02",
                        "command": "python benchmarks/x.py",
                    }
                ]
            }
        )
    )
    monkeypatch.setattr(catalogue, "RESULTS_PATH", path)
    output = run("sam").output
    assert "cifar10: 1.23x [95% CI 1.10-1.35] (measured), 1x H100, 2026-01-02; `python benchmarks/x.py`" in output
    assert "not measured yet" not in output
    assert json.loads(run("sam", "--json").output)["measured"][0]["speedup"] == 1.234


def test_malformed_results_file_is_one_clear_error(monkeypatch, tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{not json")
    monkeypatch.setattr(catalogue, "RESULTS_PATH", path)
    result = run("sam")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1 and "not valid JSON" in result.output


def test_unknown_method_suggests_a_name():
    result = run("lookahed")
    assert result.exit_code == 2 and "did you mean lookahead" in result.output


def test_name_with_filters_is_refused():
    assert run("sam", "--component", "data").exit_code == 2


def test_committed_docs_are_up_to_date_with_the_cards():
    for path, content in catalogue.docs_pages(REPO / "docs").items():
        assert path.exists(), f"{path.name} missing: run python docs/generate_method_docs.py"
        assert path.read_text() == content, f"{path.name} is stale: run python docs/generate_method_docs.py"


def test_markdown_option_prints_the_docs_page():
    page = run("--markdown", "optimization").output
    assert page == catalogue.component_markdown("optimization")
    assert page.startswith("# Optimization methods") and "## muon" in page and "| paper |" in page
    assert "| measured |" not in page  # results change with benchmark runs; the pages hold cards only
    assert run("--markdown", "training").exit_code == 2
