"""The `crm` command: dev, serve, worker, migrate, create-org, openapi."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.settings import Settings

cli = typer.Typer(help="Headless CRM", no_args_is_help=True, add_completion=False)


def _settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


@cli.command()
def dev(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    worker: Annotated[bool, typer.Option(help="run a background worker in the same process")] = True,
) -> None:
    """Everything in one process: embedded PostgreSQL and Redis (unless CRM_DATABASE_URL / CRM_REDIS_URL
    are set), migrations, a demo organisation, the API and a worker. Ctrl-C stops it all."""
    from app.api.cors import DEV_ORIGIN_REGEX
    from app.embedded import EmbeddedServices

    base = _settings(env="dev")
    embedded = EmbeddedServices(base.data_dir)
    try:
        roles = {}
        if not base.database_url:  # embedded: migrations and sweeps as the superuser, the API as a limited role
            admin_url = embedded.postgres_url()
            roles = {"database_admin_url": admin_url, "database_url": embedded.app_role_url(admin_url)}
        redis_url = base.redis_url or embedded.redis_url()
        cors = {"cors_origin_regex": base.cors_origin_regex or DEV_ORIGIN_REGEX}  # front ends on this machine
        settings = base.model_copy(update={**roles, **cors, "redis_url": redis_url,
                                           "allow_private_networks": True, "host": host, "port": port})
        settings.jwt_key()  # generated once and kept in the data dir
        from app import migrate

        migrate.upgrade_and_grant(settings)
        asyncio.run(_run_dev(settings, worker, embedded.started))
    except KeyboardInterrupt:
        pass
    finally:
        embedded.stop()
        typer.echo("stopped")


async def _run_dev(settings: Settings, with_worker: bool, started: list[str]) -> None:
    import uvicorn

    from app.db import Database
    from app.demo import ensure_demo
    from app.main import create_app
    from app.workers.runner import Supervisor

    db = Database.from_settings(settings)
    try:
        creds = await ensure_demo(db, settings)
    finally:
        await db.dispose()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                                           log_config=None, access_log=False, **_proxy_options(settings)))
    tasks = [asyncio.create_task(server.serve())]
    supervisor = None
    if with_worker:  # restarted with back-off when Redis goes away, like `crm worker`
        supervisor = Supervisor(settings)
        tasks.append(asyncio.create_task(supervisor.run()))
    while not server.started and not tasks[0].done():  # noqa: ASYNC110 - uvicorn offers no started event
        await asyncio.sleep(0.05)
    if server.started:
        base_url = f"http://{settings.host}:{settings.port}"
        typer.echo(
            "\n".join([
                "",
                f"  Headless CRM is running at {base_url}",
                f"  API docs:      {base_url}/docs",
                f"  API key:       {creds.api_key}",
                f"  Demo login:    {creds.email} / {creds.password}",
                "  Browsers:      http://localhost:* and http://127.0.0.1:* may call the API (CORS)"
                + (f", and {', '.join(settings.cors_origins)}" if settings.cors_origins else ""),
                f"  Try:           curl -H 'Authorization: Bearer {creds.api_key}' {base_url}/v1/me",
                f"  Embedded:      {', '.join(started) or 'none (using CRM_DATABASE_URL and CRM_REDIS_URL)'}"
                f" in {settings.data_dir.resolve()}",
                "  Ctrl-C stops everything.",
                "",
            ])
        )
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        server.should_exit = True
        if supervisor is not None:
            supervisor.stop()
        await asyncio.gather(*tasks, return_exceptions=True)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default CRM_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default CRM_PORT")] = None,
    workers: Annotated[int | None, typer.Option(help="uvicorn worker processes, default CRM_WORKERS")] = None,
) -> None:
    """Run the API (uvicorn) against CRM_DATABASE_URL and CRM_REDIS_URL. Refuses an old schema."""
    import uvicorn

    settings = _settings(host=host, port=port, workers=workers)
    if not settings.database_url or not settings.redis_url:
        typer.echo("CRM_DATABASE_URL and CRM_REDIS_URL are required (or use `crm dev`)", err=True)
        raise typer.Exit(2)
    settings.jwt_key()
    # uvicorn re-raises the signal that stopped it after its graceful shutdown; a clean stop exits 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run("app.main:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_config=None, access_log=False, **_proxy_options(settings))


def _proxy_options(settings: Settings) -> dict[str, object]:
    """uvicorn believes `X-Forwarded-For`/`-Proto` only from CRM_TRUSTED_PROXIES (by default from nobody, not
    even 127.0.0.1, which is uvicorn's own default): the client address the rate limits see cannot be forged."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": settings.trusted_proxies}


@cli.command()
def worker() -> None:
    """Run a background worker (arq) against CRM_DATABASE_URL and CRM_REDIS_URL. It outlives Redis outages
    (reconnecting with back-off); SIGTERM or Ctrl-C stop it after the jobs in flight."""
    from app.logging import configure_logging
    from app.workers.runner import run_until_signalled

    settings = _settings()
    if not settings.database_url or not settings.redis_url:
        typer.echo("CRM_DATABASE_URL and CRM_REDIS_URL are required (or use `crm dev`)", err=True)
        raise typer.Exit(2)
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(run_until_signalled(settings))


@cli.command()
def migrate(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply migrations (alembic upgrade) with CRM_DATABASE_ADMIN_URL or CRM_DATABASE_URL; then, when they are
    other roles, grant the roles of CRM_DATABASE_URL and CRM_DATABASE_SWEEP_URL rights on the tables' rows."""
    from app import migrate as migrations

    settings = _settings()
    if not (settings.database_admin_url or settings.database_url):
        typer.echo("CRM_DATABASE_URL (or CRM_DATABASE_ADMIN_URL) is required", err=True)
        raise typer.Exit(2)
    migrations.upgrade_and_grant(settings, revision)


@cli.command("create-org")
def create_org(
    name: Annotated[str, typer.Option(help="organisation name")],
    email: Annotated[str, typer.Option(help="the owner's login email")],
    owner_name: Annotated[str, typer.Option(help="the owner's name")] = "Owner",
    password: Annotated[str | None, typer.Option(help="the owner's password (else no password login)")] = None,
) -> None:
    """Create an organisation with its owner and print an API key with every scope (JSON)."""
    from app.db import Database
    from app.demo import create_org_with_key
    from app.domain.schemas import normalize_email

    settings = _settings()
    if not settings.database_url:
        typer.echo("CRM_DATABASE_URL is required", err=True)
        raise typer.Exit(2)

    try:
        login = normalize_email(email)
    except ValueError as exc:
        typer.echo(f"--email: {exc}", err=True)
        raise typer.Exit(2) from None
    if password is not None and len(password) < 10:
        typer.echo("--password: at least 10 characters", err=True)
        raise typer.Exit(2)

    async def run() -> tuple[str, str, str]:
        db = Database.from_settings(settings)
        try:
            return await create_org_with_key(db, settings, name, login, owner_name, password)
        finally:
            await db.dispose()

    org_id, owner_id, key = asyncio.run(run())
    typer.echo(json.dumps({"org_id": org_id, "owner_id": owner_id, "api_key": key}))


@cli.command()
def reseal() -> None:
    """Seal every stored credential again with the first key of CRM_SECRET_KEYS: after putting a new key
    first, run this, then remove the old key. Prints how many were resealed (JSON). A credential that no
    configured key opens any more is left as it is, counted as `unreadable` and named on stderr: its mailbox or
    setting shows `auth_failed` until its secret is entered again."""
    from sqlalchemy import select

    from app.db import Database
    from app.domain.models import Mailbox, SmsGateway, TelephonySettings  # every table: the foreign keys resolve
    from app.domain.sealing import Unsealable
    from app.domain.sealing import reseal as reseal_token

    unreadable: list[str] = []

    def reseal_one(token: str, where: str) -> str:
        try:
            return reseal_token(settings, token)
        except Unsealable:
            unreadable.append(where)
            return token

    settings = _settings()
    if not (settings.database_url or settings.database_admin_url):
        typer.echo("CRM_DATABASE_URL is required", err=True)
        raise typer.Exit(2)

    async def run() -> dict[str, int]:
        db = Database.from_settings(settings, sweeps=True)
        try:
            async with db.across_orgs() as session:
                boxes = (await session.scalars(select(Mailbox).with_for_update())).all()
                for box in boxes:
                    box.sealed_secrets = reseal_one(box.sealed_secrets, f"mailbox {box.org_id}/{box.id}")
                gateways = (await session.scalars(select(SmsGateway).with_for_update())).all()
                for gateway in gateways:
                    gateway.sealed_headers = reseal_one(gateway.sealed_headers,
                                                        f"sms gateway of org {gateway.org_id}")
                telephony = (await session.scalars(select(TelephonySettings).with_for_update())).all()
                for row in telephony:
                    row.sealed_secrets = reseal_one(row.sealed_secrets,
                                                    f"telephony settings of org {row.org_id}")
                return {"mailboxes": len(boxes), "sms_gateways": len(gateways), "telephony_settings": len(telephony),
                        "unreadable": len(unreadable)}
        finally:
            await db.dispose()

    counted = asyncio.run(run())
    for where in unreadable:
        typer.echo(f"unreadable (no configured key opens it, left as it is): {where}", err=True)
    typer.echo(json.dumps(counted))


@cli.command("seed-bench")
def seed_bench(
    scale: Annotated[float, typer.Option(help="1.0 = 1M deals, 300k contacts, 2M activities ...")] = 1.0,
    small_orgs: Annotated[int, typer.Option(help="small organisations beside the big one")] = 200,
) -> None:
    """Write the benchmark dataset with COPY into CRM_DATABASE_URL; prints the big org's id and API key (JSON)."""
    from app.bench_seed import seed
    from app.db import Database

    settings = _settings()
    if not settings.database_url:
        typer.echo("CRM_DATABASE_URL is required", err=True)
        raise typer.Exit(2)
    settings = settings.model_copy(update={"db_statement_timeout_ms": 0})

    async def run() -> dict:
        db = Database.from_settings(settings)
        try:
            return await seed(db, settings, scale, small_orgs)
        finally:
            await db.dispose()

    typer.echo(json.dumps(asyncio.run(run())))


@cli.command()
def openapi(
    output: Annotated[Path, typer.Option(help="where the document lives")] = Path("openapi/openapi.json"),
    check: Annotated[bool, typer.Option(help="fail if the file differs from the generated document")] = False,
) -> None:
    """Write the OpenAPI document generated from the app (or check that the committed one is current)."""
    from app.openapi_doc import render

    text = render()
    if check:
        if not output.exists() or output.read_text() != text:
            typer.echo(f"{output} is out of date: run `crm openapi` and commit it", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is current")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    typer.echo(f"wrote {output}")


def main() -> None:
    cli(prog_name="crm")


if __name__ == "__main__":
    sys.exit(main())
