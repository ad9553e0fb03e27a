"""Creates a blob container on an Azurite server: one Create Container request, signed with the
account's Shared Key (Azurite checks it), path-style (http://127.0.0.1:PORT/ACCOUNT/CONTAINER).

    python3 azurite_container.py PORT ACCOUNT CONTAINER     (the key comes on stdin, not argv)

Exit 0 when the container was made or already exists, 1 with the server's answer otherwise.
"""

import base64
import hashlib
import hmac
import http.client
import sys
from email.utils import formatdate

API_VERSION = "2021-08-06"


def main() -> int:
    port, account, container = sys.argv[1], sys.argv[2], sys.argv[3]
    key = base64.b64decode(sys.stdin.read().strip())
    date = formatdate(usegmt=True)
    # Path-style: the account is the first path segment, and the canonicalized resource is
    # "/ACCOUNT" followed by the whole path.
    path = f"/{account}/{container}"
    string_to_sign = "\n".join(
        ["PUT"] + [""] * 11 + [f"x-ms-date:{date}", f"x-ms-version:{API_VERSION}", f"/{account}{path}", "restype:container"]
    )
    signature = base64.b64encode(hmac.new(key, string_to_sign.encode(), hashlib.sha256).digest()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    conn.request(
        "PUT",
        f"{path}?restype=container",
        headers={
            "x-ms-date": date,
            "x-ms-version": API_VERSION,
            "Authorization": f"SharedKey {account}:{signature}",
            "Content-Length": "0",
        },
    )
    resp = conn.getresponse()
    body = resp.read().decode(errors="replace")
    if resp.status in (201, 409):  # created, or ContainerAlreadyExists
        return 0
    print(f"Azurite answered {resp.status} {resp.reason} to Create Container {container}: {body}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
