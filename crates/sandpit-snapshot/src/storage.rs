//! Object storage named by a URL: a local folder (`file:///path`) or an S3 bucket with an
//! optional prefix (`s3://bucket/prefix`) on AWS, MinIO or any S3-compatible endpoint
//! (path-style requests). Credentials, region and endpoint are read as the AWS tools read
//! them: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};

use crate::error::{chain, Error, Result};

/// Parts of a streamed upload (S3's multipart minimum is 5 MiB).
const PART_SIZE: usize = 5 << 20;
/// Parts uploaded at once; with [`PART_SIZE`] this bounds an upload's memory to ~15 MiB.
const PARTS_IN_FLIGHT: usize = 2;
/// The largest object [`ObjectStorage::get`] reads into memory.
const MAX_IN_MEMORY: u64 = 16 << 20;

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key, relative to the store's prefix.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written (Unix seconds).
    pub modified: i64,
}

/// A store's bytes as they arrive.
pub type ObjectStream = BoxStream<'static, Result<Bytes>>;

#[derive(Debug, Clone)]
enum Backend {
    /// A folder on this machine (its canonical path).
    Folder(std::path::PathBuf),
    /// An S3 bucket; the handle signs URLs.
    S3(Arc<AmazonS3>),
}

/// An object store named by a URL, with keys relative to the URL's path.
///
/// ```no_run
/// # async fn demo() -> sandpit_snapshot::Result<()> {
/// use sandpit_snapshot::ObjectStorage;
/// let store = ObjectStorage::open("file:///var/lib/sandpit/snapshots")?;
/// store.put("hello.txt", b"hi".to_vec().into()).await?;
/// assert_eq!(&store.get("hello.txt").await?[..], b"hi");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ObjectStorage {
    url: String,
    inner: Arc<dyn ObjectStore>,
    prefix: Vec<String>,
    backend: Backend,
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStorage")
            .field("url", &self.url)
            .finish()
    }
}

impl std::fmt::Display for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl ObjectStorage {
    /// Opens the store `url` names: `file:///absolute/folder` (made when missing) or
    /// `s3://bucket[/prefix]`. For S3 the AWS variables give credentials, region
    /// (`AWS_REGION`, default `us-east-1`) and endpoint (`AWS_ENDPOINT_URL`, for MinIO and other
    /// S3-compatible servers; plain `http://` is allowed for such an endpoint). Nothing is
    /// sent until the first operation.
    pub fn open(url: &str) -> Result<ObjectStorage> {
        let config = |reason: String| Error::Config {
            url: url.to_string(),
            reason,
        };
        let trimmed = url.trim();
        if let Some(rest) = trimmed.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(config(
                    "a folder URL is file:///absolute/path (three slashes)".into(),
                ));
            }
            let folder = std::path::PathBuf::from(percent_decode(rest));
            std::fs::create_dir_all(&folder)
                .map_err(|e| config(format!("cannot make the folder {}: {e}", folder.display())))?;
            let fs = LocalFileSystem::new_with_prefix(&folder)
                .map_err(|e| config(chain(&e)))?
                .with_automatic_cleanup(true);
            let canonical = std::fs::canonicalize(&folder).unwrap_or(folder);
            return Ok(ObjectStorage {
                url: trimmed.to_string(),
                inner: Arc::new(fs),
                prefix: Vec::new(),
                backend: Backend::Folder(canonical),
            });
        }
        let Some(rest) = trimmed
            .strip_prefix("s3://")
            .or_else(|| trimmed.strip_prefix("s3a://"))
        else {
            return Err(config(
                "unknown scheme: use file:///folder or s3://bucket/prefix".into(),
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(config("the URL names no bucket: s3://bucket/prefix".into()));
        }
        let prefix: Vec<String> = prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        for part in &prefix {
            crate::key::check_segment(part).map_err(|reason| {
                config(format!("the prefix part {part:?} cannot be used: {reason}"))
            })?;
        }
        check_credentials(&|k| std::env::var(k).ok()).map_err(config)?;
        install_crypto_provider();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..Default::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_timeout(Duration::from_secs(600)),
            );
        let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .unwrap_or_default();
        if endpoint.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
        if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
            builder = builder.with_region("us-east-1");
        }
        let s3 = Arc::new(builder.build().map_err(|e| config(chain(&e)))?);
        Ok(ObjectStorage {
            url: trimmed.trim_end_matches('/').to_string(),
            inner: s3.clone(),
            prefix,
            backend: Backend::S3(s3),
        })
    }

    /// The URL the store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> Path {
        let mut parts: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        parts.extend(key.split('/').filter(|s| !s.is_empty()));
        Path::from_iter(parts)
    }

    fn relative(&self, path: &Path) -> String {
        path.parts()
            .skip(self.prefix.len())
            .map(|p| p.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/")
    }

    fn fail(&self, operation: &'static str, key: &str, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. } => Error::NotFound {
                store: self.url.clone(),
                key: key.to_string(),
                what: "the object".into(),
            },
            e => Error::Storage {
                store: self.url.clone(),
                operation,
                key: key.to_string(),
                message: chain(&e),
            },
        }
    }

    /// Writes `data` under `key` (replacing what was there).
    pub async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.inner
            .put(&self.path(key), PutPayload::from(data))
            .await
            .map(|_| ())
            .map_err(|e| self.fail("writing", key, e))
    }

    /// Streams `data` to `key` in parts, holding at most a few parts in memory; returns the
    /// bytes written. An error item in the stream aborts the upload: nothing is left under
    /// `key` (a smaller object of a failed stream is never completed).
    pub async fn put_stream<S>(&self, key: &str, data: S) -> Result<u64>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send,
    {
        let path = self.path(key);
        let mut data = std::pin::pin!(data);
        // Small objects go up in one request.
        let mut first = Vec::new();
        let mut total = 0u64;
        while first.iter().map(Bytes::len).sum::<usize>() < PART_SIZE {
            match data.next().await {
                Some(Ok(chunk)) => {
                    total += chunk.len() as u64;
                    first.push(chunk);
                }
                Some(Err(e)) => return Err(self.stream_failed(key, e)),
                None => {
                    let payload: PutPayload = first.into_iter().collect();
                    self.inner
                        .put(&path, payload)
                        .await
                        .map_err(|e| self.fail("writing", key, e))?;
                    return Ok(total);
                }
            }
        }
        let upload = self
            .inner
            .put_multipart(&path)
            .await
            .map_err(|e| self.fail("writing", key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        for chunk in first {
            writer.put(chunk);
        }
        loop {
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                return Err(self.fail("writing", key, e));
            }
            match data.next().await {
                Some(Ok(chunk)) => {
                    total += chunk.len() as u64;
                    writer.put(chunk);
                }
                Some(Err(e)) => {
                    let _ = writer.abort().await;
                    return Err(self.stream_failed(key, e));
                }
                None => break,
            }
        }
        writer
            .finish()
            .await
            .map_err(|e| self.fail("writing", key, e))?;
        Ok(total)
    }

    fn stream_failed(&self, key: &str, e: std::io::Error) -> Error {
        Error::Storage {
            store: self.url.clone(),
            operation: "writing",
            key: key.to_string(),
            message: format!("the data to write failed: {e}"),
        }
    }

    /// Reads a small object (at most 16 MiB) whole.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let got = self
            .inner
            .get(&self.path(key))
            .await
            .map_err(|e| self.fail("reading", key, e))?;
        if got.meta.size > MAX_IN_MEMORY {
            return Err(Error::Storage {
                store: self.url.clone(),
                operation: "reading",
                key: key.to_string(),
                message: format!(
                    "the object holds {} bytes, more than the {MAX_IN_MEMORY} read into memory; stream it",
                    got.meta.size
                ),
            });
        }
        got.bytes().await.map_err(|e| self.fail("reading", key, e))
    }

    /// Streams an object: its size, then its bytes as they arrive.
    pub async fn get_stream(&self, key: &str) -> Result<(u64, ObjectStream)> {
        let got = self
            .inner
            .get(&self.path(key))
            .await
            .map_err(|e| self.fail("reading", key, e))?;
        let size = got.meta.size;
        let this = self.clone();
        let key = key.to_string();
        let stream = got
            .into_stream()
            .map_err(move |e| this.fail("reading", &key, e))
            .boxed();
        Ok((size, stream))
    }

    /// The object's size, or `None` when there is no object under `key`.
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        match self.inner.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail("reading", key, e)),
        }
    }

    /// Every object whose key starts with the folder `prefix` (`""`: all), in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let path = self.path(prefix);
        let root = if path.as_ref().is_empty() {
            None
        } else {
            Some(&path)
        };
        let mut out: Vec<ObjectInfo> = self
            .inner
            .list(root)
            .map_err(|e| self.fail("listing", prefix, e))
            .map_ok(|meta| ObjectInfo {
                key: self.relative(&meta.location),
                size: meta.size,
                modified: meta.last_modified.timestamp(),
            })
            .try_collect()
            .await?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Removes the object under `key`; one that is not there is fine.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.inner.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail("deleting", key, e)),
        }
    }

    /// A URL anyone holding it can download the object from for `expires` (S3: a presigned
    /// GET; a folder store: the file's `file://` URL, for this machine only).
    pub async fn presigned_url(&self, key: &str, expires: Duration) -> Result<String> {
        let path = self.path(key);
        match &self.backend {
            Backend::S3(s3) => s3
                .signed_url(object_store::signer::Method::GET, &path, expires)
                .await
                .map(|u| u.to_string())
                .map_err(|e| self.fail("signing a URL for", key, e)),
            Backend::Folder(root) => {
                if self.size(key).await?.is_none() {
                    return Err(Error::NotFound {
                        store: self.url.clone(),
                        key: key.to_string(),
                        what: "the object".into(),
                    });
                }
                let mut file = root.clone();
                for part in path.parts() {
                    file.push(part.as_ref());
                }
                Ok(format!("file://{}", file.display()))
            }
        }
    }
}

/// Refuses an S3 store with no way to credentials: without keys (or a web identity or
/// container credentials), the AWS client would ask the instance metadata address, which
/// only makes sense on a cloud machine. `AWS_EC2_METADATA_DISABLED=false` allows that.
fn check_credentials(var: &dyn Fn(&str) -> Option<String>) -> std::result::Result<(), String> {
    let set = |k: &str| var(k).is_some_and(|v| !v.trim().is_empty());
    let keys = set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY");
    if set("AWS_ACCESS_KEY_ID") != set("AWS_SECRET_ACCESS_KEY") {
        return Err(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both".to_string(),
        );
    }
    let other = set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        || var("AWS_SKIP_SIGNATURE").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || var("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("false"));
    if keys || other {
        Ok(())
    } else {
        Err("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_ENDPOINT_URL for MinIO or another S3-compatible server), or AWS_EC2_METADATA_DISABLED=false to use the machine's instance role".into())
    }
}

/// The S3 client's TLS uses ring, the provider the rest of Sandpit's TLS uses.
fn install_crypto_provider() {
    // An error means a provider is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Decodes `%XX` in a URL's path.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        for (url, says) in [
            ("ftp://x", "unknown scheme"),
            ("file://relative", "three slashes"),
            ("s3:///prefix", "no bucket"),
            ("s3://bucket/../up", "cannot be used"),
        ] {
            let err = ObjectStorage::open(url).unwrap_err().to_string();
            assert!(err.contains(says), "{url}: {err}");
        }
    }

    #[test]
    fn credentials_are_asked_for_before_any_request() {
        let none = |_: &str| None;
        assert!(check_credentials(&none)
            .unwrap_err()
            .contains("AWS_ACCESS_KEY_ID"));
        let half = |k: &str| (k == "AWS_ACCESS_KEY_ID").then(|| "a".to_string());
        assert!(check_credentials(&half).unwrap_err().contains("together"));
        let both = |k: &str| k.starts_with("AWS_").then(|| "a".to_string());
        assert!(check_credentials(&both).is_ok());
        let imds = |k: &str| (k == "AWS_EC2_METADATA_DISABLED").then(|| "false".to_string());
        assert!(check_credentials(&imds).is_ok());
    }

    #[tokio::test]
    async fn a_folder_store_puts_gets_lists_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/store", dir.path().display());
        let store = ObjectStorage::open(&url).unwrap();
        store.put("a/one", Bytes::from_static(b"1")).await.unwrap();
        let chunks = futures_util::stream::iter(
            (0..3).map(|i| Ok(Bytes::from(vec![i as u8; PART_SIZE / 2]))),
        );
        let n = store.put_stream("a/two", chunks).await.unwrap();
        assert_eq!(n, 3 * (PART_SIZE as u64 / 2));
        assert_eq!(&store.get("a/one").await.unwrap()[..], b"1");
        let listed = store.list("a").await.unwrap();
        let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["a/one", "a/two"]);
        assert_eq!(listed[1].size, n);
        let (size, stream) = store.get_stream("a/two").await.unwrap();
        let bytes: Vec<Bytes> = stream.try_collect().await.unwrap();
        assert_eq!(bytes.iter().map(Bytes::len).sum::<usize>() as u64, size);
        let url = store
            .presigned_url("a/one", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(
            url.starts_with("file:///") && url.ends_with("/store/a/one"),
            "{url}"
        );
        store.delete("a/one").await.unwrap();
        store.delete("a/one").await.unwrap();
        assert!(matches!(
            store.get("a/one").await.unwrap_err(),
            Error::NotFound { .. }
        ));
        // A failing stream leaves nothing behind.
        let failing = futures_util::stream::iter(vec![
            Ok(Bytes::from(vec![0u8; PART_SIZE + 1])),
            Err(std::io::Error::other("the producer failed")),
        ]);
        let err = store.put_stream("a/three", failing).await.unwrap_err();
        assert!(err.to_string().contains("the producer failed"), "{err}");
        assert_eq!(store.size("a/three").await.unwrap(), None);
    }
}
