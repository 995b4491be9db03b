"""`planner hardware list|show` and `planner models list|show|import`."""

from __future__ import annotations

from typing import Optional

import typer

hardware_app = typer.Typer(help="The hardware catalog.", no_args_is_help=True)
models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)


def hardware_row(h) -> dict:
    return {
        "name": h.name,
        "kind": h.kind,
        "vendor": h.vendor,
        "peak_tflops": dict(h.peak_tflops),
        "memory_gb": h.memory_gb,
        "mem_bandwidth_gbps": h.mem_bandwidth_gbps,
        "interconnect_gbps": h.interconnect_gbps,
        "max_devices": h.max_devices,
        "max_power_w": h.max_power_w,
        "hourly_usd": h.hourly_usd,
    }


def model_row(m) -> dict:
    from planner.params import count

    c = count(m)
    return {
        "name": m.name,
        "family": m.family,
        "attention": m.attention_kind,
        "moe": m.is_moe,
        "layers": m.num_layers,
        "total_params": c.total_params,
        "active_params": c.active_params,
        "published_total_params": m.published_total_params,
        "published_active_params": m.published_active_params or m.published_total_params,
        # KV bytes one token adds in bf16 once the context is past every sliding window
        "kv_bytes_per_token_bf16": c.kv_elems_per_token_layer * 2 * c.num_global_layers,
    }


@hardware_app.command("list")
def hardware_list(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the devices in the catalog."""
    from planner.catalog import all_hardware
    from planner.commands.output import console, print_json

    rows = [hardware_row(h) for h in all_hardware()]
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    t = Table(title=f"{len(rows)} devices")
    for col in ("name", "kind", "vendor", "bf16 TFLOP/s", "memory GB", "GB/s", "link GB/s", "max W", "$/h"):
        t.add_column(col, justify="left" if col in ("name", "kind", "vendor") else "right")
    for r in rows:
        bf16 = r["peak_tflops"].get("bf16", r["peak_tflops"].get("fp16", r["peak_tflops"].get("fp32")))
        t.add_row(r["name"], r["kind"], r["vendor"], f"{bf16:g}", f"{r['memory_gb']:g}",
                  f"{r['mem_bandwidth_gbps']:g}", f"{r['interconnect_gbps']:g}", f"{r['max_power_w']:g}",
                  f"{r['hourly_usd']:.3g}")
    console().print(t)


@hardware_app.command("show")
def hardware_show(name: str = typer.Argument(..., help="Catalog name or YAML path."),
                  json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show one device with the source of every number."""
    from planner.catalog import load_hardware
    from planner.commands.output import console, print_json

    h = load_hardware(name)
    data = h.model_dump()
    data["hourly_usd"] = h.hourly_usd
    if json_out:
        print_json(data)
        return
    _show_mapping(console(), data, f"{h.name} ({h.kind})")


@models_app.command("list")
def models_list(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the models in the catalog with counted parameters."""
    from planner.catalog import all_models
    from planner.commands.output import console, print_json

    rows = [model_row(m) for m in all_models()]
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    t = Table(title=f"{len(rows)} models")
    for col in ("name", "attention", "MoE", "layers", "total", "active", "published", "KV/token (bf16, long ctx)"):
        t.add_column(col, justify="left" if col in ("name", "attention") else "right")
    for r in rows:
        t.add_row(r["name"], r["attention"], "yes" if r["moe"] else "", str(r["layers"]),
                  f"{r['total_params'] / 1e9:.2f}B", f"{r['active_params'] / 1e9:.2f}B",
                  f"{r['published_total_params'] / 1e9:.2f}B", f"{r['kv_bytes_per_token_bf16'] / 1024:.0f} KiB")
    console().print(t)


@models_app.command("show")
def models_show(name: str = typer.Argument(..., help="Catalog name or YAML path."),
                json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show one model descriptor with its counted parameters."""
    from planner.catalog import load_model
    from planner.commands.output import console, print_json

    m = load_model(name)
    data = m.model_dump()
    data["counted"] = {k: v for k, v in model_row(m).items() if k not in data}
    if json_out:
        print_json(data)
        return
    _show_mapping(console(), data, m.name)


@models_app.command("import")
def models_import(config: str = typer.Argument(..., help="A Hugging Face config.json."),
                  name: Optional[str] = typer.Option(None, "--name", help="Name for the descriptor."),
                  output: Optional[str] = typer.Option(None, "-o", "--output", help="Write the YAML here."),
                  published_params: Optional[float] = typer.Option(
                      None, "--published-params", help="Published total parameter count, if known.")) -> None:
    """Turn a local Hugging Face config.json into a model descriptor (YAML)."""
    from planner.catalog import refuse_input, refuse_shipped
    from planner.hf_import import import_config_file, to_yaml
    from planner.files import atomic_write_text

    if output:  # a new descriptor may join models/, a shipped one (or the config.json) is never replaced
        refuse_shipped(output, new_files_ok=True)
        refuse_input(output, [config])
    data = import_config_file(config, name=name, published_total_params=published_params)
    text = to_yaml(data)
    if output:
        atomic_write_text(output, text)
        print(f"wrote {output}")
    else:
        print(text, end="")


def _show_mapping(con, data: dict, title: str) -> None:
    from rich.table import Table

    t = Table(title=title, show_header=False)
    t.add_column("field")
    t.add_column("value", overflow="fold")
    sources = data.pop("sources", {}) or {}
    for k, v in data.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        t.add_row(k, str(v))
    con.print(t)
    if sources:
        s = Table(title="sources", show_header=False)
        s.add_column("field")
        s.add_column("source", overflow="fold")
        for k, v in sources.items():
            s.add_row(k, v)
        con.print(s)


def register(app: typer.Typer) -> None:
    app.add_typer(hardware_app, name="hardware")
    app.add_typer(models_app, name="models")
