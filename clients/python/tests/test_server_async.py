"""The async client against a real Sandpit server (see conftest.py): the same basics."""

import asyncio

import pytest

import sandpit
from sandpit.models import PNG_MAGIC

pytestmark = pytest.mark.server


def run(coro):
    return asyncio.run(coro)


def test_async_basics(server_config, tmp_path):
    url, key = server_config

    async def main():
        async with sandpit.AsyncClient(url, api_key=key) as client:
            assert (await client.health()).ok
            r = await client.run("python", "print(6*7)")
            assert r.stdout == "42\n" and r.success

            async with client.session("python", metadata={"suite": "python-client-async"}) as s:
                assert isinstance(s, sandpit.AsyncSession) and s.created
                await s.execute("x = 41")
                assert (await s.execute("print(x + 1)")).stdout == "42\n"

                await s.files.write("data/in.bin", b"\xff\x00\xfe")
                assert await s.files.read("data/in.bin") == b"\xff\x00\xfe"
                assert "in.bin" in [f.name for f in await s.files.list("data")]
                local = tmp_path / "x.bin"
                local.write_bytes(b"\x80\x81")
                await s.files.upload(local, "data/x.bin")
                back = await s.files.download("data/x.bin", tmp_path / "y.bin")
                assert back.read_bytes() == b"\x80\x81"
                with pytest.raises(sandpit.InvalidInput):
                    await s.files.read("../etc/passwd")

                await s.env.set({"GREETING": "hello"})
                assert (await s.run("import os; print(os.environ['GREETING'])")).stdout == "hello\n"
                assert (await s.command("echo $GREETING")).stdout == "hello\n"

                chunks = []
                async with s.run_stream("for i in range(3): print(i, flush=True)") as stream:
                    async for chunk in stream:
                        chunks.append((chunk.text, stream.result))
                assert chunks and all(result is None for _, result in chunks)
                assert "".join(text for text, _ in chunks) == "0\n1\n2\n"
                assert stream.result.exit_code == 0

                r = await s.execute("import matplotlib.pyplot as plt\nplt.plot([1, 2])\n")
                assert len(r.images) == 1 and r.images[0][:8] == PNG_MAGIC

                info = await s.info()
                assert info.id == s.id and info.usage is not None
                sid = s.id
            assert s.closed
            with pytest.raises(sandpit.NotFound):
                await client.get_session(sid)

            s2 = await client.session("python")
            assert (await client.get_session(s2.id)).id == s2.id
            assert await s2.kill() is True

    run(main())


def test_async_errors(server_config):
    url, key = server_config

    async def main():
        async with sandpit.AsyncClient(url, api_key="sp_not_a_real_key") as bad:
            with pytest.raises(sandpit.Unauthorized):
                await bad.list_sessions()
        async with sandpit.AsyncClient(url, api_key=key) as client:
            with pytest.raises(sandpit.NotFound):
                await client.get_session("0000deadbeef")
            with pytest.raises(sandpit.InvalidInput):
                await client.run("cobol", "x")

    run(main())
