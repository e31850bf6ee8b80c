//! The [`IdentityStore`] implementation shared by both engines. Limits (failed logins,
//! throttling, TOTP replay, single-use tokens) are single atomic statements, so that every
//! server process sharing the database sees and enforces the same counts.

use async_trait::async_trait;
use phivault_identity::{
    ClientKind, ClientRecord, CredentialChange, CredentialRequest, IdentityStore, LoginStage, RequestState, Spent,
    TokenKind, TokenRecord, UserRecord, UserStatus, format_roles, parse_roles,
};
use phivault_service::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::records::is_unique_violation;
use crate::{SqlStore, unavailable};

const USER_COLUMNS: &str = "u.id, u.username, u.display_name, u.roles, u.patient_id, u.status, u.password_hash, \
    u.must_change_password, u.password_changed_ms, u.totp_secret, u.totp_confirmed, u.failed_logins, \
    u.locked_until_ms, u.last_login_ms, u.created_ms, u.updated_ms, u.version";

const TOKEN_COLUMNS: &str = "t.digest, t.kind, t.grant_id, t.user_id, t.client_id, t.scopes, t.stage, t.mfa, \
    t.authenticated_ms, t.created_ms, t.last_seen_ms, t.idle_ms, t.expires_ms, t.data, t.consumed";

const REQUEST_COLUMNS: &str =
    "id, user_id, change, requested_by, requested_ms, expires_ms, state, decided_by, decided_ms";

fn request_from_row(row: &AnyRow) -> Result<CredentialRequest, StoreError> {
    let c = corrupt("credential request row");
    let change: String = row.try_get(2).map_err(&c)?;
    let state: String = row.try_get(6).map_err(&c)?;
    Ok(CredentialRequest {
        id: row.try_get(0).map_err(&c)?,
        user_id: row.try_get(1).map_err(&c)?,
        change: CredentialChange::parse(&change).ok_or(StoreError::Corrupt("credential request row: change"))?,
        requested_by: row.try_get(3).map_err(&c)?,
        requested_ms: row.try_get(4).map_err(&c)?,
        expires_ms: row.try_get(5).map_err(&c)?,
        state: RequestState::parse(&state).ok_or(StoreError::Corrupt("credential request row: state"))?,
        decided_by: row.try_get(7).map_err(&c)?,
        decided_ms: row.try_get(8).map_err(&c)?,
    })
}

const CLIENT_COLUMNS: &str = "id, name, kind, redirect_uris, jwks, allowed_scopes, active, created_ms";

fn corrupt(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |_| StoreError::Corrupt(what)
}

fn user_from_row(row: &AnyRow, offset: usize) -> Result<UserRecord, StoreError> {
    let c = corrupt("user row");
    let roles: String = row.try_get(offset + 3).map_err(&c)?;
    let status: String = row.try_get(offset + 5).map_err(&c)?;
    Ok(UserRecord {
        id: row.try_get(offset).map_err(&c)?,
        username: row.try_get(offset + 1).map_err(&c)?,
        display_name: row.try_get(offset + 2).map_err(&c)?,
        roles: parse_roles(&roles).map_err(|_| StoreError::Corrupt("user row: unknown role"))?,
        patient_id: row.try_get(offset + 4).map_err(&c)?,
        status: UserStatus::parse(&status).ok_or(StoreError::Corrupt("user row: unknown status"))?,
        password_hash: row.try_get(offset + 6).map_err(&c)?,
        must_change_password: row.try_get::<i64, _>(offset + 7).map_err(&c)? != 0,
        password_changed_ms: row.try_get(offset + 8).map_err(&c)?,
        totp_secret_sealed: row.try_get(offset + 9).map_err(&c)?,
        totp_confirmed: row.try_get::<i64, _>(offset + 10).map_err(&c)? != 0,
        failed_logins: row.try_get(offset + 11).map_err(&c)?,
        locked_until_ms: row.try_get(offset + 12).map_err(&c)?,
        last_login_ms: row.try_get(offset + 13).map_err(&c)?,
        created_ms: row.try_get(offset + 14).map_err(&c)?,
        updated_ms: row.try_get(offset + 15).map_err(&c)?,
        version: row.try_get(offset + 16).map_err(&c)?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let c = corrupt("token row");
    let digest: Vec<u8> = row.try_get(0).map_err(&c)?;
    let kind: String = row.try_get(1).map_err(&c)?;
    let stage: String = row.try_get(6).map_err(&c)?;
    Ok(TokenRecord {
        digest: digest.try_into().map_err(|_| StoreError::Corrupt("token row: digest length"))?,
        kind: TokenKind::parse(&kind).ok_or(StoreError::Corrupt("token row: kind"))?,
        grant_id: row.try_get(2).map_err(&c)?,
        user_id: row.try_get(3).map_err(&c)?,
        client_id: row.try_get(4).map_err(&c)?,
        scopes: row.try_get(5).map_err(&c)?,
        stage: LoginStage::parse(&stage).ok_or(StoreError::Corrupt("token row: stage"))?,
        mfa: row.try_get::<i64, _>(7).map_err(&c)? != 0,
        authenticated_ms: row.try_get(8).map_err(&c)?,
        created_ms: row.try_get(9).map_err(&c)?,
        last_seen_ms: row.try_get(10).map_err(&c)?,
        idle_ms: row.try_get(11).map_err(&c)?,
        expires_ms: row.try_get(12).map_err(&c)?,
        data: row.try_get(13).map_err(&c)?,
        consumed: row.try_get::<i64, _>(14).map_err(&c)? != 0,
    })
}

fn client_from_row(row: &AnyRow) -> Result<ClientRecord, StoreError> {
    let c = corrupt("client row");
    let kind: String = row.try_get(2).map_err(&c)?;
    let uris: String = row.try_get(3).map_err(&c)?;
    Ok(ClientRecord {
        id: row.try_get(0).map_err(&c)?,
        name: row.try_get(1).map_err(&c)?,
        kind: ClientKind::parse(&kind).ok_or(StoreError::Corrupt("client row: kind"))?,
        redirect_uris: uris.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect(),
        jwks: row.try_get(4).map_err(&c)?,
        allowed_scopes: row.try_get(5).map_err(&c)?,
        active: row.try_get::<i64, _>(6).map_err(&c)? != 0,
        created_ms: row.try_get(7).map_err(&c)?,
    })
}

impl SqlStore {
    async fn user_where(&self, condition: &str, value: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE {condition} = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| user_from_row(&r, 0)).transpose()
    }

    async fn execute(&self, sql: &'static str, binds: Vec<Bind>) -> Result<u64, StoreError> {
        let _guard = self.write_guard().await;
        let mut query = sqlx::query(sql);
        for b in binds {
            query = b.bind(query);
        }
        Ok(query.execute(&self.pool).await.map_err(unavailable)?.rows_affected())
    }

    async fn token_row(&self, digest: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM auth_tokens t WHERE t.digest = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(digest.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| token_from_row(&r)).transpose()
    }
}

/// A value to bind, so that small statements can be written as data.
enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Bytes(Vec<u8>),
    OptBytes(Option<Vec<u8>>),
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

impl Bind {
    fn bind(self, q: AnyQuery<'_>) -> AnyQuery<'_> {
        match self {
            Bind::Text(v) => q.bind(v),
            Bind::OptText(v) => q.bind(v),
            Bind::Int(v) => q.bind(v),
            Bind::OptInt(v) => q.bind(v),
            Bind::Bytes(v) => q.bind(v),
            Bind::OptBytes(v) => q.bind(v),
        }
    }
}

fn text(s: &str) -> Bind {
    Bind::Text(s.to_owned())
}

fn flag(b: bool) -> Bind {
    Bind::Int(i64::from(b))
}

async fn insert_token_on(conn: &mut sqlx::AnyConnection, t: &TokenRecord) -> Result<(), StoreError> {
    let mut query = sqlx::query(
        "INSERT INTO auth_tokens (digest, kind, grant_id, user_id, client_id, scopes, stage, mfa, \
         authenticated_ms, created_ms, last_seen_ms, idle_ms, expires_ms, data, consumed) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    );
    for b in [
        Bind::Bytes(t.digest.to_vec()),
        text(t.kind.as_str()),
        text(&t.grant_id),
        Bind::OptText(t.user_id.clone()),
        Bind::OptText(t.client_id.clone()),
        text(&t.scopes),
        text(t.stage.as_str()),
        flag(t.mfa),
        Bind::Int(t.authenticated_ms),
        Bind::Int(t.created_ms),
        Bind::Int(t.last_seen_ms),
        Bind::Int(t.idle_ms),
        Bind::Int(t.expires_ms),
        Bind::OptText(t.data.clone()),
        flag(t.consumed),
    ] {
        query = b.bind(query);
    }
    query
        .execute(&mut *conn)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict } else { unavailable(e) })?;
    Ok(())
}

impl SqlStore {
    /// After a committed write that can take access away: tell the other processes.
    pub(crate) fn revoked(&self) -> Result<(), StoreError> {
        match &self.stamp {
            Some(stamp) => stamp.bump(),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl IdentityStore for SqlStore {
    fn revocation_stamp(&self) -> Option<Vec<u8>> {
        self.stamp.as_ref().map(|s| s.read())
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await.map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn insert_user(&self, u: &UserRecord) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let mut query = sqlx::query(
            "INSERT INTO users (id, username, display_name, roles, patient_id, status, password_hash, \
             must_change_password, password_changed_ms, totp_secret, totp_confirmed, failed_logins, \
             locked_until_ms, last_login_ms, created_ms, updated_ms, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        );
        for b in [
            text(&u.id),
            text(&u.username),
            text(&u.display_name),
            text(&format_roles(&u.roles)),
            Bind::OptText(u.patient_id.clone()),
            text(u.status.as_str()),
            text(&u.password_hash),
            flag(u.must_change_password),
            Bind::Int(u.password_changed_ms),
            Bind::OptBytes(u.totp_secret_sealed.clone()),
            flag(u.totp_confirmed),
            Bind::Int(u.failed_logins),
            Bind::Int(u.locked_until_ms),
            Bind::Int(u.last_login_ms.unwrap_or(0)),
            Bind::Int(u.created_ms),
            Bind::Int(u.updated_ms),
            Bind::Int(u.version),
        ] {
            query = b.bind(query);
        }
        query
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict } else { unavailable(e) })?;
        if u.last_login_ms.is_none() {
            sqlx::query("UPDATE users SET last_login_ms = NULL WHERE id = $1")
                .bind(u.id.clone())
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("u.id", id).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("u.username", username).await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.username");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(unavailable)?;
        rows.iter().map(|r| user_from_row(r, 0)).collect()
    }

    async fn update_user(&self, u: &UserRecord, revoke_tokens: bool) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let mut query = sqlx::query(
            "UPDATE users SET username = $1, display_name = $2, roles = $3, patient_id = $4, status = $5, \
             password_hash = $6, must_change_password = $7, password_changed_ms = $8, totp_secret = $9, \
             totp_confirmed = $10, updated_ms = $11, version = version + 1 WHERE id = $12 AND version = $13",
        );
        for b in [
            text(&u.username),
            text(&u.display_name),
            text(&format_roles(&u.roles)),
            Bind::OptText(u.patient_id.clone()),
            text(u.status.as_str()),
            text(&u.password_hash),
            flag(u.must_change_password),
            Bind::Int(u.password_changed_ms),
            Bind::OptBytes(u.totp_secret_sealed.clone()),
            flag(u.totp_confirmed),
            Bind::Int(u.updated_ms),
            text(&u.id),
            Bind::Int(u.version),
        ] {
            query = b.bind(query);
        }
        let done = query
            .execute(&mut *tx)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict } else { unavailable(e) })?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict);
        }
        if revoke_tokens {
            sqlx::query("DELETE FROM auth_tokens WHERE user_id = $1")
                .bind(u.id.clone())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        // Status, roles, patient link or MFA may have changed: cached principals are stale.
        self.revoked()
    }

    async fn note_login_failure(
        &self,
        user_id: &str,
        now_ms: i64,
        max_failures: i64,
        lockout_ms: i64,
    ) -> Result<(), StoreError> {
        // Both SET expressions read the row's old values (SQL semantics in both engines).
        self.execute(
            "UPDATE users SET \
               locked_until_ms = CASE WHEN failed_logins + 1 >= $1 THEN $2 ELSE locked_until_ms END, \
               failed_logins = CASE WHEN failed_logins + 1 >= $1 THEN 0 ELSE failed_logins + 1 END \
             WHERE id = $3",
            vec![Bind::Int(max_failures), Bind::Int(now_ms + lockout_ms), text(user_id)],
        )
        .await?;
        // The failure may have started a lockout, which ends the account's sessions.
        self.revoked()
    }

    async fn clear_login_failures(&self, user_id: &str, login_ms: Option<i64>) -> Result<(), StoreError> {
        match login_ms {
            Some(ms) => self.execute(
                "UPDATE users SET failed_logins = 0, locked_until_ms = 0, last_login_ms = $1 WHERE id = $2",
                vec![Bind::Int(ms), text(user_id)],
            ),
            None => self
                .execute("UPDATE users SET failed_logins = 0, locked_until_ms = 0 WHERE id = $1", vec![text(user_id)]),
        }
        .await?;
        Ok(())
    }

    async fn note_source_failure(&self, source: &str, now_ms: i64, window_ms: i64) -> Result<i64, StoreError> {
        let window_start = now_ms - now_ms.rem_euclid(window_ms);
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let failures: i64 = sqlx::query_scalar(
            "INSERT INTO login_throttle (source, window_start_ms, failures) VALUES ($1, $2, 1) \
             ON CONFLICT (source, window_start_ms) DO UPDATE SET failures = login_throttle.failures + 1 \
             RETURNING failures",
        )
        .bind(source.to_owned())
        .bind(window_start)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        sqlx::query("DELETE FROM login_throttle WHERE window_start_ms < $1")
            .bind(window_start)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(failures)
    }

    async fn source_failures(&self, source: &str, now_ms: i64, window_ms: i64) -> Result<i64, StoreError> {
        let window_start = now_ms - now_ms.rem_euclid(window_ms);
        let n: Option<i64> =
            sqlx::query_scalar("SELECT failures FROM login_throttle WHERE source = $1 AND window_start_ms = $2")
                .bind(source.to_owned())
                .bind(window_start)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(n.unwrap_or(0))
    }

    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1",
                vec![Bind::Int(step), text(user_id)],
            )
            .await?;
        Ok(n == 1)
    }

    async fn set_recovery_codes(&self, user_id: &str, digests: &[[u8; 32]]) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        for digest in digests {
            sqlx::query("INSERT INTO recovery_codes (user_id, digest) VALUES ($1, $2)")
                .bind(user_id.to_owned())
                .bind(digest.to_vec())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn use_recovery_code(&self, user_id: &str, digest: &[u8; 32]) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "DELETE FROM recovery_codes WHERE user_id = $1 AND digest = $2",
                vec![text(user_id), Bind::Bytes(digest.to_vec())],
            )
            .await?;
        Ok(n == 1)
    }

    async fn remaining_recovery_codes(&self, user_id: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1")
            .bind(user_id.to_owned())
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn password_history(&self, user_id: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT password_hash FROM password_history WHERE user_id = $1 ORDER BY replaced_ms DESC LIMIT $2",
        )
        .bind(user_id.to_owned())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    async fn add_password_history(&self, user_id: &str, hash: &str, now_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO password_history (user_id, password_hash, replaced_ms) VALUES ($1, $2, $3)",
            vec![text(user_id), text(hash), Bind::Int(now_ms)],
        )
        .await?;
        Ok(())
    }

    async fn insert_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        insert_token_on(&mut conn, t).await
    }

    async fn record_login(&self, user_id: &str, login_ms: i64, session: &TokenRecord) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // Failures are forgiven only when the whole sign-in is done: a correct password
        // followed by a wrong code must keep counting towards the lockout.
        if session.stage == LoginStage::Complete {
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until_ms = 0, last_login_ms = $1 WHERE id = $2")
                .bind(login_ms)
                .bind(user_id.to_owned())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        insert_token_on(&mut tx, session).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn token(&self, digest: &[u8; 32]) -> Result<Option<(TokenRecord, Option<UserRecord>)>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS} FROM auth_tokens t LEFT JOIN users u ON u.id = t.user_id \
             WHERE t.digest = $1"
        );
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(digest.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let token = token_from_row(&row)?;
        let user_present: Option<String> = row.try_get(15).map_err(corrupt("token row"))?;
        let user = match user_present {
            Some(_) => Some(user_from_row(&row, 15)?),
            None => None,
        };
        Ok(Some((token, user)))
    }

    async fn touch_token(&self, digest: &[u8; 32], now_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE auth_tokens SET last_seen_ms = $1 WHERE digest = $2 AND last_seen_ms < $1",
            vec![Bind::Int(now_ms), Bind::Bytes(digest.to_vec())],
        )
        .await?;
        Ok(())
    }

    async fn spend_token(&self, digest: &[u8; 32], kind: TokenKind) -> Result<Spent, StoreError> {
        let n = self
            .execute(
                "UPDATE auth_tokens SET consumed = 1 WHERE digest = $1 AND kind = $2 AND consumed = 0",
                vec![Bind::Bytes(digest.to_vec()), text(kind.as_str())],
            )
            .await?;
        let Some(mut token) = self.token_row(digest).await?.filter(|t| t.kind == kind) else {
            return Ok(Spent::Missing);
        };
        if n == 1 {
            token.consumed = false;
            Ok(Spent::Fresh(token))
        } else {
            Ok(Spent::Replayed(token))
        }
    }

    async fn delete_token(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.execute("DELETE FROM auth_tokens WHERE digest = $1", vec![Bind::Bytes(digest.to_vec())]).await?;
        self.revoked()
    }

    async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM auth_tokens WHERE grant_id = $1", vec![text(grant_id)]).await?;
        self.revoked()
    }

    async fn delete_user_tokens(&self, user_id: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM auth_tokens WHERE user_id = $1", vec![text(user_id)]).await?;
        self.revoked()
    }

    async fn user_tokens(&self, user_id: &str) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM auth_tokens t WHERE t.user_id = $1 ORDER BY t.created_ms");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id.to_owned())
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn purge_expired_tokens(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.execute("DELETE FROM auth_tokens WHERE expires_ms < $1", vec![Bind::Int(before_ms)]).await
    }

    async fn insert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let mut query = sqlx::query(
            "INSERT INTO oauth_clients (id, name, kind, redirect_uris, jwks, allowed_scopes, active, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        );
        for b in [
            text(&c.id),
            text(&c.name),
            text(c.kind.as_str()),
            text(&c.redirect_uris.join("\n")),
            Bind::OptText(c.jwks.clone()),
            text(&c.allowed_scopes),
            flag(c.active),
            Bind::Int(c.created_ms),
        ] {
            query = b.bind(query);
        }
        query
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict } else { unavailable(e) })?;
        Ok(())
    }

    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| client_from_row(&r)).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(unavailable)?;
        rows.iter().map(client_from_row).collect()
    }

    async fn set_client_active(&self, id: &str, active: bool) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let n = sqlx::query("UPDATE oauth_clients SET active = $1 WHERE id = $2")
            .bind(i64::from(active))
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
        if !active {
            sqlx::query("DELETE FROM auth_tokens WHERE client_id = $1")
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        self.revoked()?;
        Ok(n == 1)
    }

    async fn signing_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT kid, sealed FROM signing_keys ORDER BY created_ms, kid LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| {
            let c = corrupt("signing key row");
            Ok((r.try_get(0).map_err(&c)?, r.try_get(1).map_err(&c)?))
        })
        .transpose()
    }

    async fn insert_signing_key(&self, kid: &str, sealed: &[u8], now_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO signing_keys (kid, sealed, created_ms) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING",
            vec![text(kid), Bind::Bytes(sealed.to_vec()), Bind::Int(now_ms)],
        )
        .await?;
        Ok(())
    }

    async fn note_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.execute("DELETE FROM assertion_jtis WHERE expires_ms < $1", vec![Bind::Int(now_ms)]).await?;
        let n = self
            .execute(
                "INSERT INTO assertion_jtis (client_id, jti, expires_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (client_id, jti) DO NOTHING",
                vec![text(client_id), text(jti), Bind::Int(expires_ms)],
            )
            .await?;
        Ok(n == 1)
    }

    async fn insert_credential_request(&self, r: &CredentialRequest) -> Result<(), StoreError> {
        let _guard = self.write_guard().await;
        let mut query = sqlx::query(
            "INSERT INTO credential_requests (id, user_id, change, requested_by, requested_ms, expires_ms, state, \
             decided_by, decided_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        );
        for b in [
            text(&r.id),
            text(&r.user_id),
            text(r.change.as_str()),
            text(&r.requested_by),
            Bind::Int(r.requested_ms),
            Bind::Int(r.expires_ms),
            text(r.state.as_str()),
            Bind::OptText(r.decided_by.clone()),
            Bind::OptInt(r.decided_ms),
        ] {
            query = b.bind(query);
        }
        query
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict } else { unavailable(e) })?;
        Ok(())
    }

    async fn credential_request(&self, id: &str) -> Result<Option<CredentialRequest>, StoreError> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM credential_requests WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn credential_requests(
        &self,
        user_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CredentialRequest>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match user_id {
            Some(user) => {
                let sql = format!(
                    "SELECT {REQUEST_COLUMNS} FROM credential_requests WHERE user_id = $1 \
                     ORDER BY requested_ms DESC, id LIMIT $2"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.to_owned()).bind(limit).fetch_all(&self.pool).await
            }
            None => {
                let sql = format!(
                    "SELECT {REQUEST_COLUMNS} FROM credential_requests ORDER BY requested_ms DESC, id LIMIT $1"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(&self.pool).await
            }
        }
        .map_err(unavailable)?;
        rows.iter().map(request_from_row).collect()
    }

    async fn decide_credential_request(
        &self,
        id: &str,
        state: RequestState,
        by: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let _guard = self.write_guard().await;
        let n = sqlx::query(
            "UPDATE credential_requests SET state = $1, decided_by = $2, decided_ms = $3 \
             WHERE id = $4 AND state = 'pending' AND expires_ms > $5",
        )
        .bind(state.as_str().to_owned())
        .bind(by.to_owned())
        .bind(at_ms)
        .bind(id.to_owned())
        .bind(at_ms)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?
        .rows_affected();
        Ok(n == 1)
    }
}
