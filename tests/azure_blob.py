#!/usr/bin/env python3
"""The other side of vhdprep's upload tests: Microsoft's Python Azure SDK
(azure-storage-blob) against Azurite, plus a service SAS signed here from the documented
string-to-sign (an implementation independent of vhdprep's).

  azure_blob.py sas ENDPOINT ACCOUNT KEY CONTAINER BLOB PERMS SECONDS   -> the SAS URL
  azure_blob.py container CONN NAME                                     -> creates it
  azure_blob.py pageblob CONN CONTAINER BLOB SIZE                       -> empty page blob
  azure_blob.py blockblob CONN CONTAINER BLOB                           -> small block blob
  azure_blob.py exists CONN CONTAINER BLOB                              -> True/False
  azure_blob.py download CONN CONTAINER BLOB OUT                        -> JSON facts
"""
import base64, datetime, hashlib, hmac, json, sys, urllib.parse


def sas(endpoint, account, key, container, blob, perms, seconds):
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=int(seconds))
    se = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    sv = "2022-11-02"
    fields = [perms, "", se, f"/blob/{account}/{container}/{blob}", "", "", "", sv, "b",
              "", "", "", "", "", "", ""]
    sig = base64.b64encode(hmac.new(base64.b64decode(key), "\n".join(fields).encode(),
                                    hashlib.sha256).digest()).decode()
    q = urllib.parse.urlencode({"sv": sv, "sr": "b", "sp": perms, "se": se, "sig": sig})
    print(f"{endpoint}/{container}/{blob}?{q}")


def service(conn):
    from azure.storage.blob import BlobServiceClient
    return BlobServiceClient.from_connection_string(conn)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sas":
        sas(*args)
    elif cmd == "container":
        service(args[0]).create_container(args[1])
    elif cmd == "pageblob":
        service(args[0]).get_blob_client(args[1], args[2]).create_page_blob(int(args[3]))
    elif cmd == "blockblob":
        service(args[0]).get_blob_client(args[1], args[2]).upload_blob(b"not a disk\n")
    elif cmd == "exists":
        print(service(args[0]).get_blob_client(args[1], args[2]).exists())
    elif cmd == "download":
        b = service(args[0]).get_blob_client(args[1], args[2])
        props = b.get_blob_properties()
        with open(args[3], "wb") as f:
            b.download_blob(max_concurrency=4).readinto(f)
        ranges = []
        for r in b.list_page_ranges():
            ranges.append([r.start, r.end + 1])
        md5 = props.content_settings.content_md5
        print(json.dumps({
            "size": props.size,
            "blob_type": str(props.blob_type),
            "content_md5": base64.b64encode(md5).decode() if md5 else None,
            "page_ranges": ranges,
            "metadata": props.metadata,
        }))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
