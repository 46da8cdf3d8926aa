{
  "targets": [
    {
      "target_name": "user_history",
      "type": "loadable_module",
      "sources": ["user-history.c"],
      "include_dirs": ["<!(node -p \"require('path').join(require('path').dirname(require.resolve('better-sqlite3/package.json')), 'deps', 'sqlite3')\")"],
      "cflags": ["-std=c99"],
      "xcode_settings": { "OTHER_CFLAGS": ["-std=c99"] }
    }
  ]
}
