"""Printed by `make run` before the processes start: where to go next, and who to be."""
from __future__ import annotations

import sys


def people_lines() -> list[str]:
    """One line per demo role, read from the seeded database (empty when it cannot be read)."""
    try:
        from app import create_app
        from app.demo.guide import demo_people

        with create_app().app_context():
            return [f"  {p.role:<12} {p.who:<10} {p.detail}" for p in demo_people()]
    except Exception as exc:  # the banner must never stop `make run`
        return [f"  （无法读取演示人员：{type(exc).__name__}）"]


def main(argv: list[str]) -> None:
    host, port, sandbox_port = (argv + ["127.0.0.1", "5000", "8001"][len(argv):])[:3]
    base = f"http://{host}:{port}"
    people = "\n".join(people_lines())
    print(f"""
热力客服系统 (heating service backend) — starting
  健康检查 healthz       {base}/healthz
  公众号回调 callback    {base}/wechat/callback
  运营看板 dashboard     {base}/dashboard   (领导: 微信授权选 leader1, 或账号 leader1 / demo1234)
  客服工作台 console     {base}/console     (客服 agent1 / demo1234, 管理员 admin / demo1234)
  微信沙箱 sandbox       http://{host}:{sandbox_port}/sandbox   (搜索昵称即可扮演其人)
演示人员 who to be (沙箱昵称 = 员工账号 / 户主姓名; 员工密码 demo1234):
{people}
Ctrl-C stops everything; `make stop` also stops the embedded Redis.
""", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:4])
