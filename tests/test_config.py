from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import assert_one_line_error

from waikan import config
from waikan.errors import ConfigError


def write(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "waikan.toml").write_text(text, encoding="utf-8")


def test_precedence_file_env_flag(tmp_path: Path) -> None:
    write(tmp_path, '[channel]\nname = "From File"\n[llm]\nmodel = "file-model"\n')
    cfg = config.load(tmp_path, env={})
    assert cfg["channel.name"] == "From File" and cfg.origins["channel.name"] == "file"
    cfg = config.load(tmp_path, env={"WAIKAN_CHANNEL_NAME": "真相集中营"})
    assert cfg["channel.name"] == "真相集中营" and cfg.origins["channel.name"] == "env"
    assert cfg["llm.model"] == "file-model"
    cfg = config.load(
        tmp_path, env={"WAIKAN_CHANNEL_NAME": "env"}, overrides={"channel.name": "flag"}
    )
    assert cfg["channel.name"] == "flag" and cfg.origins["channel.name"] == "flag"


@pytest.mark.parametrize(
    ("name", "env_value", "expected"),
    [
        ("WAIKAN_LLM_BASE_URL", "http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("WAIKAN_LLM_MODEL", "qwen-plus", "qwen-plus"),
        ("WAIKAN_LLM_API_KEY", "sk-abc", "sk-abc"),
        ("WAIKAN_STORE_URL", "sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ("WAIKAN_FETCH_ALLOW_PRIVATE_NETWORKS", "true", True),
        ("WAIKAN_FETCH_MAX_BYTES", "2048", 2048),
    ],
)
def test_env_rule(tmp_path: Path, name: str, env_value: str, expected: object) -> None:
    cfg = config.load(tmp_path, env={name: env_value})
    key = name.removeprefix("WAIKAN_").lower().replace("_", ".", 1)
    assert cfg[key] == expected


@pytest.mark.parametrize(
    ("text", "env", "names"),
    [
        ('[fetch]\nmax_bytes = "lots"\n', {}, "fetch.max_bytes"),
        ("[fetch]\nallow_private_networks = 3\n", {}, "fetch.allow_private_networks"),
        ('[channel]\nvariant = "zh-Latn"\n', {}, "channel.variant"),
        ("[channel]\nreading_wpm = 0\n", {}, "channel.reading_wpm"),
        ('[llm]\nbase_url = "ftp://x"\n', {}, "llm.base_url"),
        ("[llm]\nnope = 1\n", {}, "llm.nope"),
        ("[nosuch]\na = 1\n", {}, "[nosuch]"),
        ('[llm]\napi_key = "sk-literal"\n', {}, "llm.api_key"),
        ("", {"WAIKAN_FETCH_TIMEOUT": "soon"}, "fetch.timeout"),
        ('[store]\nurl = "waikan.db"\n', {}, "store.url"),
        ("[channel\nname=1", {}, "invalid TOML"),
    ],
)
def test_bad_values_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], names: str
) -> None:
    write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path, env=env)
    assert names in str(info.value)
    assert "\n" not in str(info.value)
    assert "sk-literal" not in str(info.value)


def test_secret_by_reference(tmp_path: Path) -> None:
    write(tmp_path, '[llm]\napi_key = { "$env" = "MY_DEEPSEEK_KEY" }\n')
    cfg = config.load(tmp_path, env={"MY_DEEPSEEK_KEY": "sk-ref"})
    assert cfg["llm.api_key"] == "sk-ref"
    assert cfg.redacted()["llm.api_key"] == "(set)"
    (tmp_path / "key.txt").write_text("sk-file\n")
    write(tmp_path, '[llm]\napi_key = { "$file" = "key.txt" }\n')
    assert config.load(tmp_path, env={})["llm.api_key"] == "sk-file"


def test_example_config_is_valid_and_complete(tmp_path: Path) -> None:
    text = config.example_toml()
    write(tmp_path, text)
    cfg = config.load(tmp_path, env={})
    assert all(origin == "default" for origin in cfg.origins.values())
    for setting in config.SETTINGS:
        assert setting.env in text  # every setting documented in the commented file
    # Uncommenting every non-secret line yields a valid file too.
    settings_part = text.split("# Destinations")[0]
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and " = " in line and "$env" not in line else line
        for line in settings_part.splitlines()
    )
    write(tmp_path, uncommented)
    assert config.load(tmp_path, env={}).origins["channel.name"] == "file"


def test_cli_bad_config_value_is_one_line(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    result = waikan("list", env={"WAIKAN_FETCH_MAX_BYTES": "-5x"})
    assert_one_line_error(result)
    assert "fetch.max_bytes" in result.err
    assert not (home / "waikan.db").exists()  # nothing written on a config error


def test_cli_set_flag_and_init(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    assert waikan("init").code == 0
    assert (home / "waikan.toml").read_text().startswith("# waikan configuration")
    result = waikan("--set", "channel.name=旗标", "config")
    assert "channel.name = '旗标'  (flag)" in result.out
    assert_one_line_error(waikan("--set", "channel.nonsense=1", "config"))
    assert waikan("--set", "channel.nonsense=1", "config").code == 1


def test_home_from_environment(tmp_path: Path) -> None:
    from tests.conftest import run_inproc

    result = run_inproc(["init"], env={"WAIKAN_HOME": str(tmp_path / "envhome")})
    assert result.code == 0
    assert (tmp_path / "envhome" / "waikan.toml").exists()
