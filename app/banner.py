"""Printed by `make run` before the processes start: where to go next."""
import sys

host, port, sandbox_port = (sys.argv[1:4] + ["127.0.0.1", "5000", "8001"][len(sys.argv[1:4]):])[:3]
base = f"http://{host}:{port}"
print(f"""
热力客服系统 (heating service backend) — starting
  健康检查 healthz       {base}/healthz
  公众号回调 callback    {base}/wechat/callback
  微信沙箱 sandbox       http://{host}:{sandbox_port}/sandbox
Ctrl-C stops everything; `make stop` also stops the embedded Redis.
""", flush=True)
