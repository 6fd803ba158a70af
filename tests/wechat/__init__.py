"""Tests of wechat/."""
