//! A client of a remote content-addressable storage (REAPI `ContentAddressableStorage` and
//! `ByteStream`): asks which blobs are missing, uploads only those (small ones in batches,
//! large ones streamed from disk in chunks), and downloads blobs checking each one's digest.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use bazel_remote_apis::google::bytestream::byte_stream_client::ByteStreamClient;
use bazel_remote_apis::google::bytestream::{ReadRequest, WriteRequest};
use rand_core::RngCore as _;
use tonic::codegen::tokio_stream::StreamExt as _;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::blob;
use super::reapi::content_addressable_storage_client::ContentAddressableStorageClient;
use super::reapi::{
    self, BatchReadBlobsRequest, BatchUpdateBlobsRequest, FindMissingBlobsRequest,
    batch_update_blobs_request,
};
use crate::digest::Digest;

/// Blobs up to this size go in batches, and a batch holds up to this much: under the 4 MiB
/// gRPC message limit servers use by default, with room for the envelope.
const BATCH_BYTES: u64 = 2 << 20;
/// Chunks of a streamed blob.
const CHUNK: usize = 1 << 20;
/// Digests per `FindMissingBlobs` call.
const FIND_CHUNK: usize = 4096;

/// Where a blob's bytes are.
#[derive(Clone, Debug)]
pub enum Source {
    Bytes(Vec<u8>),
    File(PathBuf),
}

#[derive(Clone)]
pub struct Cas {
    channel: Channel,
    instance: String,
}

/// Connects to `url` (`grpc://HOST:PORT`, or `http://`), lazily: the first call reports an
/// unreachable server.
pub fn channel(url: &str) -> Result<Channel, String> {
    let address = if let Some(rest) = url.strip_prefix("grpc://") {
        format!("http://{rest}")
    } else if url.starts_with("http://") {
        url.to_owned()
    } else {
        return Err(format!(
            "`{url}`: a remote is written grpc://HOST:PORT (TLS is not supported yet)"
        ));
    };
    let endpoint = Channel::from_shared(address)
        .map_err(|error| format!("`{url}` is not a valid address: {error}"))?
        .connect_timeout(std::time::Duration::from_secs(10));
    Ok(endpoint.connect_lazy())
}

/// A gRPC status as a sentence naming what was being done.
#[must_use]
pub fn failed(doing: &str, status: &tonic::Status) -> String {
    let message = status.message();
    if status.code() == tonic::Code::Unavailable {
        format!("{doing}: the remote is unreachable ({message})")
    } else {
        format!("{doing}: {:?}: {message}", status.code())
    }
}

impl Cas {
    #[must_use]
    pub fn new(channel: Channel, instance: &str) -> Self {
        Self {
            channel,
            instance: instance.to_owned(),
        }
    }

    fn client(&self) -> ContentAddressableStorageClient<Channel> {
        ContentAddressableStorageClient::new(self.channel.clone())
            .max_decoding_message_size(64 << 20)
    }

    fn resource_prefix(&self) -> String {
        if self.instance.is_empty() {
            String::new()
        } else {
            format!("{}/", self.instance)
        }
    }

    /// The digests the server does not have.
    pub async fn find_missing(
        &self,
        digests: &[reapi::Digest],
    ) -> Result<Vec<reapi::Digest>, String> {
        let mut missing = Vec::new();
        let mut client = self.client();
        for chunk in digests.chunks(FIND_CHUNK) {
            let response = client
                .find_missing_blobs(FindMissingBlobsRequest {
                    instance_name: self.instance.clone(),
                    blob_digests: chunk.to_vec(),
                    digest_function: 0,
                })
                .await
                .map_err(|status| failed("asking the remote CAS what it lacks", &status))?;
            missing.extend(response.into_inner().missing_blob_digests);
        }
        Ok(missing)
    }

    /// Uploads the blobs the server lacks; returns how many it lacked.
    pub async fn upload_missing(
        &self,
        blobs: Vec<(reapi::Digest, Source)>,
    ) -> Result<usize, String> {
        let digests: Vec<reapi::Digest> = blobs.iter().map(|(digest, _)| digest.clone()).collect();
        let missing: std::collections::HashSet<String> = self
            .find_missing(&digests)
            .await?
            .into_iter()
            .map(|digest| digest.hash)
            .collect();
        let mut seen = std::collections::HashSet::new();
        let wanted: Vec<(reapi::Digest, Source)> = blobs
            .into_iter()
            .filter(|(digest, _)| {
                missing.contains(&digest.hash) && seen.insert(digest.hash.clone())
            })
            .collect();
        let count = wanted.len();
        self.upload(wanted).await?;
        Ok(count)
    }

    /// Uploads every blob: small ones in batches, large ones streamed.
    pub async fn upload(&self, blobs: Vec<(reapi::Digest, Source)>) -> Result<(), String> {
        let mut batch: Vec<batch_update_blobs_request::Request> = Vec::new();
        let mut batch_bytes = 0u64;
        for (digest, source) in blobs {
            let size = u64::try_from(digest.size_bytes).unwrap_or(u64::MAX);
            if size > BATCH_BYTES {
                self.stream_up(&digest, source).await?;
                continue;
            }
            if batch_bytes + size > BATCH_BYTES {
                self.send_batch(std::mem::take(&mut batch)).await?;
                batch_bytes = 0;
            }
            let data = match source {
                Source::Bytes(bytes) => bytes,
                Source::File(path) => std::fs::read(&path)
                    .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?,
            };
            check(&digest, &data)?;
            batch_bytes += size;
            batch.push(batch_update_blobs_request::Request {
                digest: Some(digest),
                data,
                compressor: 0,
            });
        }
        if !batch.is_empty() {
            self.send_batch(batch).await?;
        }
        Ok(())
    }

    async fn send_batch(
        &self,
        requests: Vec<batch_update_blobs_request::Request>,
    ) -> Result<(), String> {
        let response = self
            .client()
            .batch_update_blobs(BatchUpdateBlobsRequest {
                instance_name: self.instance.clone(),
                requests,
                digest_function: 0,
            })
            .await
            .map_err(|status| failed("uploading blobs to the remote CAS", &status))?;
        for answer in response.into_inner().responses {
            if let Some(status) = answer.status
                && status.code != 0
            {
                return Err(format!(
                    "the remote CAS refused blob {}: {}",
                    answer
                        .digest
                        .as_ref()
                        .map(blob::display)
                        .unwrap_or_default(),
                    status.message
                ));
            }
        }
        Ok(())
    }

    /// Streams a blob up with ByteStream.Write, reading a file a chunk at a time.
    async fn stream_up(&self, digest: &reapi::Digest, source: Source) -> Result<(), String> {
        let resource = format!(
            "{}uploads/{:016x}{:016x}/blobs/{}",
            self.resource_prefix(),
            rand_core::OsRng.next_u64(),
            rand_core::OsRng.next_u64(),
            blob::display(digest)
        );
        let (sender, receiver) = tokio::sync::mpsc::channel::<WriteRequest>(4);
        let size = digest.size_bytes;
        let producer = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let mut reader: Box<dyn std::io::Read> = match source {
                Source::Bytes(bytes) => Box::new(std::io::Cursor::new(bytes)),
                Source::File(path) => Box::new(
                    std::fs::File::open(&path)
                        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?,
                ),
            };
            let mut offset = 0i64;
            let mut first = true;
            loop {
                let mut data = vec![0u8; CHUNK];
                let mut filled = 0;
                while filled < CHUNK {
                    let count = reader
                        .read(&mut data[filled..])
                        .map_err(|error| format!("reading a blob to upload: {error}"))?;
                    if count == 0 {
                        break;
                    }
                    filled += count;
                }
                data.truncate(filled);
                let finish = offset + i64::try_from(filled).unwrap_or(0) >= size;
                let request = WriteRequest {
                    resource_name: if first {
                        resource.clone()
                    } else {
                        String::new()
                    },
                    write_offset: offset,
                    finish_write: finish,
                    data,
                };
                first = false;
                offset += i64::try_from(filled).unwrap_or(0);
                if sender.blocking_send(request).is_err() || finish || filled == 0 {
                    return Ok(());
                }
            }
        });
        let result = ByteStreamClient::new(self.channel.clone())
            .write(ReceiverStream::new(receiver))
            .await;
        producer
            .await
            .map_err(|error| format!("uploading a blob: {error}"))??;
        let committed = result
            .map_err(|status| {
                failed(
                    &format!("uploading blob {}", blob::display(digest)),
                    &status,
                )
            })?
            .into_inner()
            .committed_size;
        if committed != size {
            return Err(format!(
                "the remote CAS committed {committed} bytes of blob {}",
                blob::display(digest)
            ));
        }
        Ok(())
    }

    /// A blob's bytes, checked against its digest.
    pub async fn download(&self, digest: &reapi::Digest) -> Result<Vec<u8>, String> {
        let size = u64::try_from(digest.size_bytes).unwrap_or(u64::MAX);
        if size == 0 {
            return check(digest, &[]).map(|()| Vec::new());
        }
        let data = if size <= BATCH_BYTES {
            let response = self
                .client()
                .batch_read_blobs(BatchReadBlobsRequest {
                    instance_name: self.instance.clone(),
                    digests: vec![digest.clone()],
                    acceptable_compressors: Vec::new(),
                    digest_function: 0,
                })
                .await
                .map_err(|status| failed("downloading from the remote CAS", &status))?;
            let answer = response
                .into_inner()
                .responses
                .into_iter()
                .next()
                .ok_or_else(|| {
                    format!(
                        "the remote CAS did not answer for blob {}",
                        blob::display(digest)
                    )
                })?;
            if let Some(status) = answer.status
                && status.code != 0
            {
                return Err(format!(
                    "the remote CAS has no blob {}: {}",
                    blob::display(digest),
                    status.message
                ));
            }
            answer.data
        } else {
            self.stream_down(digest).await?
        };
        check(digest, &data)?;
        Ok(data)
    }

    /// Many blobs at once, by digest hash, each checked: small ones in batches, large ones
    /// streamed. The same digest asked twice is fetched once.
    pub async fn download_many(
        &self,
        digests: &[reapi::Digest],
    ) -> Result<std::collections::HashMap<String, Vec<u8>>, String> {
        let mut found = std::collections::HashMap::new();
        let mut batch: Vec<reapi::Digest> = Vec::new();
        let mut batch_bytes = 0u64;
        let mut asked = std::collections::HashSet::new();
        for digest in digests {
            if !asked.insert(digest.hash.as_str()) {
                continue;
            }
            let size = u64::try_from(digest.size_bytes).unwrap_or(u64::MAX);
            if size == 0 || size > BATCH_BYTES {
                found.insert(digest.hash.clone(), self.download(digest).await?);
                continue;
            }
            if batch_bytes + size > BATCH_BYTES {
                self.read_batch(std::mem::take(&mut batch), &mut found)
                    .await?;
                batch_bytes = 0;
            }
            batch_bytes += size;
            batch.push(digest.clone());
        }
        if !batch.is_empty() {
            self.read_batch(batch, &mut found).await?;
        }
        Ok(found)
    }

    async fn read_batch(
        &self,
        digests: Vec<reapi::Digest>,
        found: &mut std::collections::HashMap<String, Vec<u8>>,
    ) -> Result<(), String> {
        let response = self
            .client()
            .batch_read_blobs(BatchReadBlobsRequest {
                instance_name: self.instance.clone(),
                digests: digests.clone(),
                acceptable_compressors: Vec::new(),
                digest_function: 0,
            })
            .await
            .map_err(|status| failed("downloading from the remote CAS", &status))?;
        for answer in response.into_inner().responses {
            let digest = answer.digest.unwrap_or_default();
            if let Some(status) = answer.status
                && status.code != 0
            {
                return Err(format!(
                    "the remote CAS has no blob {}: {}",
                    blob::display(&digest),
                    status.message
                ));
            }
            check(&digest, &answer.data)?;
            found.insert(digest.hash, answer.data);
        }
        for digest in &digests {
            if !found.contains_key(&digest.hash) {
                return Err(format!(
                    "the remote CAS did not answer for blob {}",
                    blob::display(digest)
                ));
            }
        }
        Ok(())
    }

    async fn stream_down(&self, digest: &reapi::Digest) -> Result<Vec<u8>, String> {
        let resource = format!("{}blobs/{}", self.resource_prefix(), blob::display(digest));
        let mut stream = ByteStreamClient::new(self.channel.clone())
            .read(ReadRequest {
                resource_name: resource,
                read_offset: 0,
                read_limit: 0,
            })
            .await
            .map_err(|status| {
                failed(
                    &format!("downloading blob {}", blob::display(digest)),
                    &status,
                )
            })?
            .into_inner();
        let mut data = Vec::with_capacity(usize::try_from(digest.size_bytes).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|status| {
                failed(
                    &format!("downloading blob {}", blob::display(digest)),
                    &status,
                )
            })?;
            data.extend_from_slice(&chunk.data);
        }
        Ok(data)
    }

    /// Downloads a blob into `path` (written to a temporary file, then renamed).
    pub async fn download_to(
        &self,
        digest: &reapi::Digest,
        path: &Path,
        executable: bool,
    ) -> Result<(), String> {
        let data = self.download(digest).await?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| format!("cannot make `{}`: {error}", parent.display()))?;
        }
        crate::atomic::write(path, &data)
            .map_err(|error| format!("cannot write `{}`: {error}", path.display()))?;
        let mode = if executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|error| format!("cannot set the mode of `{}`: {error}", path.display()))
    }
}

/// A blob whose bytes do not have its digest is an error, never an output.
fn check(digest: &reapi::Digest, data: &[u8]) -> Result<(), String> {
    let found = Digest::of_bytes(data);
    let size = i64::try_from(data.len()).unwrap_or(i64::MAX);
    if found.hex() == digest.hash && size == digest.size_bytes {
        Ok(())
    } else {
        Err(format!(
            "blob {} arrived as {}/{size}: the remote's bytes do not match their digest",
            blob::display(digest),
            found.hex()
        ))
    }
}
