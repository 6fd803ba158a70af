"""WeChat's API errors as code outside ``wechat/`` catches them (jobs, console pages, the
staff CLI, the mini-program API): wechatpy's exceptions under our package's name, so that only
``wechat/`` imports wechatpy.

``WeChatClientException`` carries WeChat's ``errcode``/``errmsg``; ``WeChatException`` is its
base (any answer of WeChat's API that is an error)."""
from __future__ import annotations

from wechatpy.exceptions import WeChatClientException, WeChatException

__all__ = ["WeChatClientException", "WeChatException"]
