//! Signing in: the password checked with argon2id against a dummy hash for unknown names, failures
//! counted per account and address, per known device and per address, and locks that end by
//! themselves (see [`ThrottleLimits`]).

use super::*;

impl Accounts {
    /// Signs a user in: checks the password, records the time of the sign-in, and issues the
    /// browser a new device cookie value for this account ([`SignedIn::device_token`]).
    ///
    /// Unknown username, wrong password and inactive account all give
    /// [`AccountRefusal::InvalidCredentials`] after the same work (one argon2 verification).
    ///
    /// `device_cookie` is the device cookie the browser presented, if any. When it is one this
    /// account issued (and not expired), failures are counted for that device, and only the device's
    /// own lock and the address's lock refuse it: the owner's known browser gets in while others'
    /// failures lock the account. Otherwise failures are counted for the account, for the account
    /// from this client address, and for the address. While any count that applies is locked, the
    /// answer is [`AccountRefusal::Throttled`] without checking the password. A success forgets the
    /// counts of the account it was checked against (the device's, or the account's and the
    /// address's on it), voids the presented device cookie, and upgrades a hash made with older
    /// parameters.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        client_ip: Option<IpAddr>,
        device_cookie: Option<&str>,
    ) -> Result<SignedIn, AccountError> {
        let client = crate::sessions::ClientInfo {
            ip: client_ip,
            ..Default::default()
        };
        self.sign_in_from(username, password, &client, device_cookie)
            .await
    }

    /// [`Accounts::sign_in`] from this client, whose user agent a wrong password's line in the
    /// account's sign-in activity shows.
    pub async fn sign_in_from(
        &self,
        username: &str,
        password: &str,
        client: &crate::sessions::ClientInfo,
        device_cookie: Option<&str>,
    ) -> Result<SignedIn, AccountError> {
        let result = self
            .check_credentials(username, password, client, device_cookie)
            .await;
        // Malformed input and database failures are not attempts, so they are not counted.
        let outcome = match &result {
            Ok(_) => Some(SignInOutcome::Success),
            Err(AccountError::Refused(AccountRefusal::InvalidCredentials)) => {
                Some(SignInOutcome::Failure)
            }
            Err(AccountError::Refused(AccountRefusal::Throttled { .. })) => {
                Some(SignInOutcome::Throttled)
            }
            Err(_) => None,
        };
        if let Some(outcome) = outcome {
            crate::metrics::sign_in(outcome);
        }
        result
    }

    /// [`Accounts::sign_in`] for a client that keeps no device cookie (the command line, scripts):
    /// throttled as a browser without one.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<User, AccountError> {
        self.sign_in(username, password, client_ip, None)
            .await
            .map(|signed_in| signed_in.user)
    }

    async fn check_credentials(
        &self,
        username: &str,
        password: &str,
        client: &crate::sessions::ClientInfo,
        device_cookie: Option<&str>,
    ) -> Result<SignedIn, AccountError> {
        let client_ip = client.ip;
        let username = validate_username(username)?;
        if password.is_empty() {
            return Err(AccountError::Refused(AccountRefusal::PasswordRequired));
        }
        if validate::too_long(password, MAX_PASSWORD_CHARS) {
            return Err(AccountError::Refused(AccountRefusal::PasswordTooLong {
                max: MAX_PASSWORD_CHARS,
            }));
        }
        let key = username_key(username);
        let device = match device_cookie.and_then(DeviceToken::hash_of) {
            Some(hash) => self.known_device(&key, &hash).await?,
            None => None,
        };
        let subjects = self.sign_in_subjects(&key, client_ip, device).await?;
        // Refuse at once while locked; then again once a hashing slot is ours, since attempts queued
        // behind the slot may have locked the account meanwhile.
        self.refuse_if_locked(&subjects).await?;
        let permit = self.hashing_permit().await?;
        self.refuse_if_locked(&subjects).await?;

        let row: Option<CredentialRow> = with_pool!(self.db(), |pool| sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username_key = $1"
        ))
        .bind(&key)
        .fetch_optional(pool)
        .await)?;
        let hash = row
            .as_ref()
            .map_or(password::DUMMY_HASH, |row| row.password_hash.as_str());
        let matches = self.verify(password, hash).await?;
        let row = match row {
            Some(row) if matches && row.user.is_active => row,
            _ => {
                drop(permit);
                self.record_failure(&subjects).await?;
                if let Some(row) = row.as_ref().filter(|row| row.user.is_active) {
                    self.record_sign_in_attempt(
                        row.user.id,
                        false,
                        super::activity::FAILED_PASSWORD,
                        client,
                        None,
                    )
                    .await;
                }
                return Err(AccountError::Refused(AccountRefusal::InvalidCredentials));
            }
        };
        if self.inner.config.require_verified_email && row.user.email_verified_at.is_none() {
            tracing::info!(
                user_id = row.user.id,
                "sign-in refused: email address not verified"
            );
            // Nothing to send a link to: staff must add an address first.
            return Err(if row.user.email.is_empty() {
                AccountRefusal::EmailRequired.into()
            } else {
                AccountRefusal::EmailNotVerified.into()
            });
        }
        let rehash = if needs_rehash(&row.password_hash) {
            Some(self.hash(password).await?)
        } else {
            None
        };
        drop(permit);

        let signed_in_at = now();
        let device_token = DeviceToken::generate();
        let device_expires_at = to_millis(signed_in_at).saturating_add(millis(DEVICE_LIFETIME));
        let updated = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let mut update = QueryBuilder::new("UPDATE users SET last_login_at = ");
            update.push_bind(to_millis(signed_in_at));
            if let Some(hash) = &rehash {
                update.push(", password_hash = ").push_bind(hash.as_str());
            }
            update
                .push(" WHERE id = ")
                .push_bind(row.user.id)
                .push(" AND is_active = TRUE");
            let updated = update.build().execute(&mut *tx).await?.rows_affected();
            // The per-address count stays: it counts failures on every account.
            for (kind, subject) in subjects.iter().filter(|(kind, _)| *kind != Kind::Ip) {
                sqlx::query(throttle::CLEAR)
                    .bind(kind.as_str())
                    .bind(subject.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(device) = device {
                sqlx::query("DELETE FROM known_devices WHERE id = $1")
                    .bind(device)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO known_devices (token_hash, user_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(device_token.hash().as_bytes().as_slice())
            .bind(row.user.id)
            .bind(to_millis(signed_in_at))
            .bind(device_expires_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM known_devices WHERE user_id = $1 AND id NOT IN \
                 (SELECT id FROM known_devices WHERE user_id = $1 ORDER BY id DESC LIMIT $2)",
            )
            .bind(row.user.id)
            .bind(MAX_DEVICES_PER_USER)
            .execute(&mut *tx)
            .await?;
            if updated == 1 {
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(updated)
        })?;
        if updated != 1 {
            // Deleted or deactivated between the check and now.
            return Err(AccountError::Refused(AccountRefusal::InvalidCredentials));
        }
        if rehash.is_some() {
            tracing::info!(user_id = row.user.id, "password hash upgraded");
        }
        let mut user = row.user.into_user();
        user.last_login_at = Some(signed_in_at);
        Ok(SignedIn { user, device_token })
    }

    /// The id of the known device with this token hash, when it belongs to the account with this
    /// folded username and has not expired.
    async fn known_device(
        &self,
        username_key: &str,
        token_hash: &crate::sessions::TokenHash,
    ) -> Result<Option<i64>, AccountError> {
        let device: Option<(i64,)> = with_pool!(self.db(), |pool| sqlx::query_as(
            "SELECT known_devices.id FROM known_devices \
             JOIN users ON users.id = known_devices.user_id \
             WHERE known_devices.token_hash = $1 AND users.username_key = $2 \
               AND known_devices.expires_at > $3"
        )
        .bind(token_hash.as_bytes().as_slice())
        .bind(username_key)
        .bind(to_millis(now()))
        .fetch_optional(pool)
        .await)?;
        Ok(device.map(|(id,)| id))
    }

    /// What a sign-in's failures are counted by (see [`Accounts::sign_in`]).
    async fn sign_in_subjects(
        &self,
        username_key: &str,
        client_ip: Option<IpAddr>,
        device: Option<i64>,
    ) -> Result<Vec<(Kind, String)>, AccountError> {
        let ip = client_ip.map(ip_subject);
        let mut subjects = match device {
            Some(device) => vec![(Kind::Device, device.to_string())],
            None => {
                let account = self.account_subject(username_key).await?;
                let mut subjects = Vec::with_capacity(3);
                if let Some(ip) = &ip {
                    subjects.push((Kind::AccountIp, account_ip_subject(&account, ip)));
                }
                subjects.push((Kind::Account, account));
                subjects
            }
        };
        subjects.extend(ip.map(|ip| (Kind::Ip, ip)));
        Ok(subjects)
    }

    /// How long sign-ins for this username from this address, by a browser without the account's
    /// device cookie, are still refused (`None`: not at all).
    pub async fn throttle_delay(
        &self,
        username: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<Duration>, AccountError> {
        let subjects = self
            .sign_in_subjects(&username_key(username), client_ip, None)
            .await?;
        self.lock_remaining(&subjects).await
    }

    /// Forgets the failed sign-ins of this username by browsers without a device cookie, from every
    /// address (for staff helping someone locked out).
    pub async fn reset_throttle(&self, username: &str) -> Result<(), AccountError> {
        let account = self.account_subject(&username_key(username)).await?;
        let prefix = account_ip_subject(&account, "");
        with_pool!(self.db(), |pool| sqlx::query(throttle::CLEAR_ACCOUNT)
            .bind(&account)
            .bind(&prefix)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Deletes the throttling counts that are forgotten anyway, the device cookies that have
    /// expired, and the one-time tokens that have expired (used or not) (run it with the session
    /// sweeper); returns how many counts.
    pub async fn clear_stale_attempts(&self) -> Result<u64, AccountError> {
        let now = to_millis(now());
        let done = with_pool!(self.db(), |pool| {
            sqlx::query("DELETE FROM known_devices WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM account_tokens WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(throttle::SWEEP)
                .bind(now)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(done)
    }

    pub(super) async fn refuse_if_locked(
        &self,
        subjects: &[(Kind, String)],
    ) -> Result<(), AccountError> {
        match self.lock_remaining(subjects).await? {
            Some(retry_after) => Err(AccountRefusal::throttled(retry_after).into()),
            None => Ok(()),
        }
    }

    fn limits(&self, kind: Kind) -> &ThrottleLimits {
        let config = &self.inner.config;
        match kind {
            Kind::Account => &config.account_throttle,
            Kind::SecondFactor => &config.second_factor_throttle,
            Kind::AccountIp => &config.account_ip_throttle,
            Kind::Device => &config.device_throttle,
            Kind::Ip => &config.ip_throttle,
        }
    }

    async fn lock_remaining(
        &self,
        subjects: &[(Kind, String)],
    ) -> Result<Option<Duration>, AccountError> {
        if subjects.is_empty() {
            return Ok(None);
        }
        let now = to_millis(now());
        let locks: Vec<(String, i64)> = with_pool!(self.db(), |pool| {
            let mut query = QueryBuilder::new(
                "SELECT kind, locked_until FROM login_attempts WHERE locked_until > ",
            );
            query.push_bind(now).push(" AND (");
            for (n, (kind, subject)) in subjects.iter().enumerate() {
                if n > 0 {
                    query.push(" OR ");
                }
                query
                    .push("(kind = ")
                    .push_bind(kind.as_str())
                    .push(" AND subject = ")
                    .push_bind(subject.as_str())
                    .push(")");
            }
            query.push(")");
            query.build_query_as().fetch_all(pool).await
        })?;
        Ok(locks
            .into_iter()
            .filter_map(|(kind, locked_until)| {
                let limits = self.limits(Kind::parse(&kind)?);
                let left = u64::try_from(locked_until.saturating_sub(now)).ok()?;
                // A lock never outlasts the configured longest delay, even one written under
                // older, stricter settings.
                limits
                    .is_enabled()
                    .then(|| Duration::from_millis(left).min(limits.max_delay))
            })
            .max())
    }

    /// Counts an attempt of `subject` before it is made, as a failure: `Ok(false)` (nothing counted)
    /// while it is locked. Attempts that arrive together are counted one after the other with the
    /// lock each one sets, so no more than the limit get through however many are sent at once;
    /// the caller forgets the count ([`throttle::CLEAR`]) when the attempt succeeds.
    pub(super) async fn reserve_attempt(
        &self,
        (kind, subject): &(Kind, String),
    ) -> Result<bool, AccountError> {
        let limits = self.limits(*kind);
        if !limits.is_enabled() {
            return Ok(true);
        }
        let now = to_millis(now());
        let window = millis(limits.window);
        let reserved = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let counted: Option<(i64,)> = sqlx::query_as(throttle::RESERVE_ATTEMPT)
                .bind(kind.as_str())
                .bind(subject.as_str())
                .bind(now)
                .bind(now.saturating_add(window))
                .fetch_optional(&mut *tx)
                .await?;
            let Some((failures,)) = counted else {
                return Ok(false);
            };
            let delay = limits.delay_after(u64::try_from(failures).unwrap_or(0));
            let locked_until = delay.map_or(0, |delay| now.saturating_add(millis(delay)));
            let forget_at = locked_until.max(now).saturating_add(window);
            sqlx::query(throttle::SET_LOCK)
                .bind(locked_until)
                .bind(forget_at)
                .bind(kind.as_str())
                .bind(subject.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        })?;
        Ok(reserved)
    }

    /// Counts a failure for every subject whose throttle is on, in one transaction.
    pub(super) async fn record_failure(
        &self,
        subjects: &[(Kind, String)],
    ) -> Result<(), AccountError> {
        let subjects: Vec<&(Kind, String)> = subjects
            .iter()
            .filter(|(kind, _)| self.limits(*kind).is_enabled())
            .collect();
        if subjects.is_empty() {
            return Ok(());
        }
        let now = to_millis(now());
        with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            for (kind, subject) in &subjects {
                let limits = self.limits(*kind);
                let window = millis(limits.window);
                let (failures,): (i64,) = sqlx::query_as(throttle::COUNT_FAILURE)
                    .bind(kind.as_str())
                    .bind(subject.as_str())
                    .bind(now)
                    .bind(now.saturating_add(window))
                    .fetch_one(&mut *tx)
                    .await?;
                let delay = limits.delay_after(u64::try_from(failures).unwrap_or(0));
                let locked_until = delay.map_or(0, |delay| now.saturating_add(millis(delay)));
                let forget_at = locked_until.max(now).saturating_add(window);
                sqlx::query(throttle::SET_LOCK)
                    .bind(locked_until)
                    .bind(forget_at)
                    .bind(kind.as_str())
                    .bind(subject.as_str())
                    .execute(&mut *tx)
                    .await?;
                if let Some(delay) = delay {
                    // Only the address is logged: no username, not even hashed.
                    let client = (*kind == Kind::Ip).then_some(subject.as_str());
                    tracing::warn!(
                        kind = kind.as_str(),
                        client,
                        failures,
                        delay_secs = delay.as_secs(),
                        "failed sign-ins throttled"
                    );
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }
}
