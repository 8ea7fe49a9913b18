{
  "targets": [
    {
      "target_name": "ctpipe_netlink",
      "sources": ["collector/native/netlink.cc"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fno-exceptions"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
