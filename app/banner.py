"""Printed by `make run` before the processes start: where to go next."""
import sys

host, port, sandbox_port = (sys.argv[1:4] + ["127.0.0.1", "5000", "8001"][len(sys.argv[1:4]):])[:3]
base = f"http://{host}:{port}"
print(f"""
热力客服系统 (heating service backend) — starting
  健康检查 healthz       {base}/healthz
  公众号回调 callback    {base}/wechat/callback
  运营看板 dashboard     {base}/dashboard   (领导: 微信授权, 或账号 leader1 / demo1234)
  客服工作台 console     {base}/console     (客服 agent1 / demo1234, 管理员 admin / demo1234)
  微信沙箱 sandbox       http://{host}:{sandbox_port}/sandbox
Ctrl-C stops everything; `make stop` also stops the embedded Redis.
""", flush=True)
