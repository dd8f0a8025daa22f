//! Fresh databases for each server the bench starts: a new SQLite file, or a new
//! PostgreSQL database dropped at the end.

use std::path::PathBuf;

use crate::report::Backend;

pub struct Databases {
    dir: PathBuf,
    postgres: Option<String>,
    made: Vec<String>,
    n: u32,
}

impl Databases {
    pub fn new(dir: PathBuf, postgres: Option<String>) -> Databases {
        Databases {
            dir,
            postgres,
            made: Vec::new(),
            n: 0,
        }
    }

    pub async fn fresh(&mut self, backend: Backend) -> Result<String, String> {
        self.n += 1;
        match backend {
            Backend::Sqlite => Ok(format!(
                "sqlite://{}",
                self.dir.join(format!("bench-{}.db", self.n)).display()
            )),
            Backend::Postgres => {
                let server = self.postgres.as_deref().ok_or("PostgreSQL is off")?;
                let url = create(server).await?;
                self.made.push(url.clone());
                Ok(url)
            }
        }
    }

    pub async fn drop_all(&mut self) {
        if let Some(server) = &self.postgres {
            for url in self.made.drain(..) {
                drop_db(server, &url).await;
            }
        }
    }
}

async fn create(server: &str) -> Result<String, String> {
    use sqlx::Connection;
    let name = format!("leadgate_bench_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(server).await.map_err(|e| e.to_string())?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut url = url::Url::parse(server).map_err(|e| e.to_string())?;
    url.set_path(&name);
    Ok(url.to_string())
}

async fn drop_db(server: &str, url: &str) {
    use sqlx::Connection;
    let Some(name) = url::Url::parse(url)
        .ok()
        .map(|u| u.path().trim_start_matches('/').to_owned())
    else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(server).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}
