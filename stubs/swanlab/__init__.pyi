from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

__version__: str

ModeType = Literal["disabled", "online", "local", "offline"]

class _ProbeSettings:
    def __init__(
        self,
        *,
        hardware: bool = True,
        runtime: bool = True,
        requirements: bool = True,
        conda: bool = False,
        git: bool = True,
        swanlab: bool = True,
        monitor: bool = True,
    ) -> None: ...

class _TerminalSettings:
    def __init__(self, *, proxy_type: Literal["all", "stdout", "stderr", "none"] = "all") -> None: ...

class Settings:
    Probe: ClassVar[type[_ProbeSettings]]
    Terminal: ClassVar[type[_TerminalSettings]]
    def __init__(
        self,
        *,
        interactive: bool = True,
        mode: ModeType | Literal["cloud"] = "online",
        log_dir: str | Path = ...,
        api_key: str | None = None,
        api_host: str = ...,
        probe: _ProbeSettings = ...,
        terminal: _TerminalSettings = ...,
    ) -> None: ...

class _Config:
    def update(self, values: Mapping[str, Any]) -> None: ...

config: _Config

class Run:
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...

def init(
    *,
    reinit: bool | None = None,
    log_dir: str | None = None,
    mode: ModeType | None = None,
    workspace: str | None = None,
    project: str | None = None,
    name: str | None = None,
    description: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    id: str | None = None,
    config: Mapping[Any, Any] | str | None = None,  # a plain dict, or a JSON/YAML file's path
    settings: Settings | None = None,
) -> Run: ...
def log(data: Mapping[str, Any], step: int | None = None) -> None: ...
def finish(
    state: Literal["success", "crashed", "aborted"] = "success",
    error: str | None = None,
    async_log_timeout: int | None = None,
) -> None: ...

class Image:
    def __init__(self, data_or_path: str, caption: str | None = None) -> None: ...
