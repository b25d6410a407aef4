//! Creative uploads: JPG, PNG, GIF or WEBP of at most 3 MB, recognised by their content (not by
//! the file name), stored under the data directory and served back with their content type.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use axum::{
    extract::{Path as UrlPath, State},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use gokart_storage::TenantRecord;
use uuid::Uuid;

use super::{
    page::PageError,
    session::{AppTenant, Upload},
};
use crate::AppState;

pub const MAX_CREATIVE_BYTES: usize = 3 * 1024 * 1024;

static DATA_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Where uploads go (`--data-dir` / `GOKART_DATA_DIR`). Set once at start-up; until then the
/// environment variable or `gokart-data` is used.
pub fn set_data_dir(dir: impl Into<PathBuf>) {
    let _ = DATA_DIR.set(dir.into());
}

fn data_dir() -> &'static Path {
    DATA_DIR.get_or_init(|| {
        std::env::var_os("GOKART_DATA_DIR")
            .map_or_else(|| PathBuf::from("gokart-data"), PathBuf::from)
    })
}

fn tenant_dir(tenant: &TenantRecord) -> PathBuf {
    data_dir().join("creatives").join(tenant.id.to_string())
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/creatives/{file}", get(serve))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
    Gif,
    Webp,
}

impl ImageKind {
    /// What the first bytes say the file is.
    pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
        match bytes {
            [0xFF, 0xD8, 0xFF, ..] => Some(ImageKind::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(ImageKind::Png),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(ImageKind::Gif),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => {
                Some(ImageKind::Webp)
            }
            _ => None,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpg",
            ImageKind::Png => "png",
            ImageKind::Gif => "gif",
            ImageKind::Webp => "webp",
        }
    }

    fn from_extension(extension: &str) -> Option<ImageKind> {
        [ImageKind::Jpeg, ImageKind::Png, ImageKind::Gif, ImageKind::Webp]
            .into_iter()
            .find(|kind| kind.extension() == extension)
    }

    fn content_type(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
            ImageKind::Gif => "image/gif",
            ImageKind::Webp => "image/webp",
        }
    }
}

/// Checks and stores an upload; answers its absolute URL, or the message to show by the field.
pub async fn store(
    state: &AppState,
    tenant: &TenantRecord,
    upload: &Upload,
) -> Result<String, String> {
    if upload.bytes.len() > MAX_CREATIVE_BYTES {
        return Err(format!(
            "{} is {:.1} MB; a creative may be at most 3 MB.",
            upload.file_name,
            upload.bytes.len() as f64 / (1024.0 * 1024.0)
        ));
    }
    let kind = ImageKind::sniff(&upload.bytes).ok_or_else(|| {
        format!(
            "{} is not an image: upload a JPG, PNG, GIF or WEBP file (checked by its content, \
             not its name).",
            upload.file_name
        )
    })?;
    let name = format!("{}.{}", Uuid::new_v4(), kind.extension());
    let dir = tenant_dir(tenant);
    let written = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join(&name), &upload.bytes).await
    };
    if let Err(error) = written.await {
        tracing::error!(%error, dir = %dir.display(), "creative not stored");
        return Err("The creative could not be stored; try again.".into());
    }
    Ok(format!("{}/creatives/{name}", state.engine.urls.app_origin(&tenant.slug)))
}

/// Public, like any ad creative: partners and offerwalls show it. Names are random UUIDs.
async fn serve(
    State(_): State<AppState>,
    AppTenant(tenant): AppTenant,
    UrlPath(file): UrlPath<String>,
) -> Result<Response, PageError> {
    let (stem, extension) = file.split_once('.').ok_or(PageError::NotFound)?;
    let id = Uuid::parse_str(stem).map_err(|_| PageError::NotFound)?;
    let kind = ImageKind::from_extension(extension).ok_or(PageError::NotFound)?;
    let path = tenant_dir(&tenant).join(format!("{id}.{}", kind.extension()));
    let bytes = tokio::fs::read(path).await.map_err(|_| PageError::NotFound)?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind.content_type()));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_not_the_name() {
        assert_eq!(ImageKind::sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageKind::Png));
        assert_eq!(ImageKind::sniff(b"\xFF\xD8\xFF\xE0"), Some(ImageKind::Jpeg));
        assert_eq!(ImageKind::sniff(b"GIF89a.."), Some(ImageKind::Gif));
        assert_eq!(ImageKind::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageKind::Webp));
        assert_eq!(ImageKind::sniff(b"\x7fELF\x02\x01\x01"), None);
        assert_eq!(ImageKind::sniff(b"MZ\x90\0"), None);
        assert_eq!(ImageKind::sniff(b""), None);
    }
}
