//! Files into and out of containers through the engine's archive API: no shell or
//! coreutils needed in the image, and it works on stopped containers too.

use std::io::Read;

use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use futures::TryStreamExt;

use super::DockerRuntime;
use crate::error::{Error, ObjectKind, Result};

/// Splits an absolute path into its directory and file name.
pub fn split_path(path: &str) -> Result<(&str, &str)> {
    let invalid = |why: &str| Error::InvalidContent {
        operation: "write file",
        message: format!("path {path:?} {why}"),
    };
    if !path.starts_with('/') {
        return Err(invalid("must be absolute"));
    }
    let (dir, name) = path
        .rsplit_once('/')
        .ok_or_else(|| invalid("has no file name"))?;
    if name.is_empty() || name == "." || name == ".." {
        return Err(invalid("has no file name"));
    }
    Ok((if dir.is_empty() { "/" } else { dir }, name))
}

/// A tar archive holding regular files `(name, contents, mode)`, in that order.
pub fn files_tar(files: &[(&str, &[u8], u32)]) -> std::io::Result<Vec<u8>> {
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let size: usize = files.iter().map(|(_, c, _)| c.len() + 1024).sum();
    let mut builder = tar::Builder::new(Vec::with_capacity(size));
    for (name, contents, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, *contents)?;
    }
    builder.into_inner()
}

/// The contents of the archive's first entry when it is a regular file (the
/// engine puts the requested path first; a directory would come with its children).
pub fn first_file_in_tar(archive: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    let mut ar = tar::Archive::new(archive);
    let Some(entry) = ar.entries()?.next() else {
        return Ok(None);
    };
    let mut entry = entry?;
    if !entry.header().entry_type().is_file() {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut buf)?;
    Ok(Some(buf))
}

impl DockerRuntime {
    /// Writes `files`, all in directory `dir` (names without a directory), as one archive.
    pub(super) async fn write_files_impl(
        &self,
        container: &str,
        dir: &str,
        files: &[(&str, &[u8], u32)],
    ) -> Result<()> {
        let archive = files_tar(files).map_err(|e| Error::InvalidContent {
            operation: "write file",
            message: e.to_string(),
        })?;
        let docker = self.client().await?;
        let ctx = self.ctx("write file", ObjectKind::Container, container);
        let options = UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        let archive = bytes::Bytes::from(archive);
        let first = docker
            .upload_to_container(
                container,
                Some(options.clone()),
                bollard::body_full(archive.clone()),
            )
            .await
            .map_err(|e| self.map(e, ctx));
        match first {
            // 404 is either the container or the directory; only the latter is ours to fix.
            Err(Error::NotFound { .. }) if self.inspect_impl(container).await?.is_some() => {
                let mkdir = crate::info::ExecRequest::new(["mkdir", "-p", dir]);
                let out = self.exec_impl(container, mkdir).await?;
                if !out.success() {
                    return Err(Error::ExecFailed {
                        container: container.to_string(),
                        command: format!("mkdir -p {dir}"),
                        exit_code: out.exit_code,
                        output_tail: crate::error::output_tail(&out.stderr_lossy(), 5, 1024),
                    });
                }
                docker
                    .upload_to_container(container, Some(options), bollard::body_full(archive))
                    .await
                    .map_err(|e| self.map(e, ctx))
            }
            other => other,
        }
    }

    pub(super) async fn read_file_impl(&self, container: &str, path: &str) -> Result<Vec<u8>> {
        let docker = self.client().await?;
        // A 404 here means either the container or the file is missing; tell which.
        let ctx = self.ctx("read file", ObjectKind::File, path);
        let options = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let archive: Vec<u8> = docker
            .download_from_container(container, Some(options))
            .map_ok(|chunk| chunk.to_vec())
            .try_concat()
            .await
            .map_err(|e| self.map(e, ctx))
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::NotFound {
                    kind: ObjectKind::File,
                    name: format!("{container}:{path}"),
                },
                other => other,
            })?;
        first_file_in_tar(&archive)
            .map_err(|e| Error::InvalidContent {
                operation: "read file",
                message: format!("{container}:{path}: {e}"),
            })?
            .ok_or_else(|| Error::InvalidContent {
                operation: "read file",
                message: format!("{container}:{path} is not a regular file"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_round_trip() {
        let ar = files_tar(&[("haproxy.cfg", b"global\n", 0o644)]).unwrap();
        assert_eq!(first_file_in_tar(&ar).unwrap().unwrap(), b"global\n");
    }

    #[test]
    fn files_tar_keeps_each_file_in_order() {
        let ar = files_tar(&[("a", b"1", 0o644), ("b", b"22", 0o600)]).unwrap();
        let mut archive = tar::Archive::new(&ar[..]);
        let got: Vec<(String, u32, Vec<u8>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut buf = Vec::new();
                e.read_to_end(&mut buf).unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                (path, e.header().mode().unwrap(), buf)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".to_string(), 0o644, b"1".to_vec()),
                ("b".to_string(), 0o600, b"22".to_vec())
            ]
        );
    }

    #[test]
    fn split_path_requires_absolute_file() {
        assert_eq!(split_path("/a/b.cfg").unwrap(), ("/a", "b.cfg"));
        assert_eq!(split_path("/b").unwrap(), ("/", "b"));
        assert!(split_path("b").is_err());
        assert!(split_path("/a/").is_err());
    }
}
