//! Images: presence, pull, and export as a tar stream.

use std::time::Duration;

use bollard::query_parameters::CreateImageOptions;
use futures::{StreamExt, TryStreamExt};

use super::DockerRuntime;
use crate::error::{Error, ObjectKind, Result};
use crate::info::ByteStream;

/// A pull that makes no progress for this long is given up (no registry reachable
/// often means DNS or TCP hanging rather than a quick refusal).
const PULL_TIMEOUT: Duration = Duration::from_secs(300);

impl DockerRuntime {
    pub(super) async fn image_present_impl(&self, image: &str) -> Result<bool> {
        let docker = self.client().await?;
        match docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) => match self.map(e, self.ctx("inspect image", ObjectKind::Image, image)) {
                Error::ImageMissing { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    pub(super) async fn ensure_image_impl(&self, image: &str) -> Result<()> {
        if self.image_present_impl(image).await? {
            return Ok(());
        }
        tracing::info!(image, "image not present, pulling");
        let docker = self.client().await?;
        let ctx = self.ctx("pull image", ObjectKind::Image, image);
        let options = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let pull = docker
            .create_image(Some(options), None, None)
            .map_err(|e| self.map(e, ctx))
            .try_for_each(|progress| async move {
                match progress.error_detail.and_then(|d| d.message) {
                    Some(message) => Err(Error::Engine {
                        operation: "pull image",
                        status: 500,
                        message,
                    }),
                    None => Ok(()),
                }
            });
        let result = match tokio::time::timeout(PULL_TIMEOUT, pull).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                operation: "pull image",
                after: PULL_TIMEOUT,
            }),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e @ Error::EngineUnreachable { .. }) => Err(e),
            Err(Error::ImageMissing { reason, .. }) => Err(Error::ImageMissing {
                image: image.to_string(),
                reason,
            }),
            Err(other) => Err(Error::ImageMissing {
                image: image.to_string(),
                reason: other.to_string(),
            }),
        }
    }

    pub(super) async fn save_image_impl(&self, image: &str) -> Result<ByteStream> {
        // Check first so a missing image or engine fails here, not mid-stream.
        if !self.image_present_impl(image).await? {
            return Err(Error::ImageMissing {
                image: image.to_string(),
                reason: "not present in the engine".into(),
            });
        }
        let docker = self.client().await?;
        let endpoint = self.endpoint_str().to_string();
        let image_owned = image.to_string();
        let stream = docker.export_image(image).map_err(move |e| {
            std::io::Error::other(format!("export image {image_owned} from {endpoint}: {e}"))
        });
        Ok(stream.boxed())
    }
}
