//! Creating users: by staff and the command line, by self-service sign-up (limited per client
//! address and in all; a taken name costs a hash like any other), and the one first staff account.

use super::*;

/// Who a new user's staff flag comes from.
#[derive(Debug, Clone, Copy)]
enum Staff {
    /// The caller's choice (staff and the command line), or `false` for self-service.
    Given(bool),
    /// Staff exactly when no user exists yet; once one does, refused unless `open`.
    FirstOrOpen { open: bool },
}

/// Binds: username, key, email, password hash, created_at, is_staff.
const INSERT_USER: &str = "\
    INSERT INTO users (username, username_key, email, password_hash, is_staff, is_active, created_at) \
    VALUES ($1, $2, $3, $4, $6, TRUE, $5) RETURNING id, is_staff";

/// Binds as [`INSERT_USER`], then whether sign-up is open instead of the staff flag: the user is
/// staff when there is no other, and is not inserted at all when there is one and sign-up is closed.
const INSERT_FIRST_OR_OPEN: &str = "\
    INSERT INTO users (username, username_key, email, password_hash, is_staff, is_active, created_at) \
    SELECT $1, $2, $3, $4, NOT EXISTS (SELECT 1 FROM users), TRUE, $5 \
    WHERE $6 OR NOT EXISTS (SELECT 1 FROM users) \
    RETURNING id, is_staff";

/// The PostgreSQL advisory lock sign-ups that may make the first account queue on ("cs-first").
const FIRST_ACCOUNT_LOCK: i64 = 0x6373_2d66_6972_7374;

impl Accounts {
    /// Checks a username, email address and password as [`Accounts::create_user`] would, without
    /// writing anything (for a form to report every problem before hashing).
    pub fn validate_new_user(&self, new: &NewUser) -> Result<(), AccountError> {
        self.checked_new_user(new).map(drop)
    }

    /// The trimmed username and email address (empty for none) of a valid new user.
    fn checked_new_user<'a>(&self, new: &'a NewUser) -> Result<(&'a str, &'a str), AccountError> {
        let username = validate_username(&new.username)?;
        let email = validate_email(new.email.as_deref())?.unwrap_or_default();
        validate_new_password(
            username,
            &new.password,
            self.inner.config.min_password_chars,
        )?;
        Ok((username, email))
    }

    /// Creates a user (for staff and the command line: works whether or not sign-up is open).
    ///
    /// Errors: the validation errors of usernames, emails and passwords, and
    /// [`AccountRefusal::UsernameTaken`] when another user has the same username ignoring case — only
    /// after hashing the password, as for a new account, so that how long the answer takes does not
    /// tell a taken username apart.
    pub async fn create_user(&self, new: NewUser) -> Result<User, AccountError> {
        let (username, email) = self.checked_new_user(&new)?;
        let hash = self.hash_new_password(&new.password).await?;
        self.insert_user(username, email, &hash, Staff::Given(new.is_staff))
            .await
    }

    pub(super) async fn hash_new_password(&self, password: &str) -> Result<String, AccountError> {
        let _permit = self.hashing_permit().await?;
        self.hash(password).await
    }

    /// Inserts a user whose password is hashed already. The unique index on `username_key` is what
    /// finds a taken username: there is no earlier check that would answer sooner.
    async fn insert_user(
        &self,
        username: &str,
        email: &str,
        hash: &str,
        staff: Staff,
    ) -> Result<User, AccountError> {
        let key = username_key(username);
        let created_at = now();
        let (sql, flag) = match staff {
            Staff::Given(is_staff) => (INSERT_USER, is_staff),
            Staff::FirstOrOpen { open } => (INSERT_FIRST_OR_OPEN, open),
        };
        // SQLite runs a writing statement under the database's write lock from its start, so
        // INSERT_FIRST_OR_OPEN reads and inserts atomically there. PostgreSQL reads a snapshot:
        // there, sign-ups that may make the first account queue on a lock of their own, and each
        // sees what the one before it committed.
        let queue = matches!(staff, Staff::FirstOrOpen { .. })
            && self.db().backend() == crate::Backend::Postgres;
        // An async block, so that `?` stops there: a unique violation is an answer, not a failure.
        let inserted: Result<Option<(i64, bool)>, sqlx::Error> =
            with_pool!(self.db(), |pool| async {
                let mut tx = pool.begin().await?;
                if queue {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(FIRST_ACCOUNT_LOCK)
                        .execute(&mut *tx)
                        .await?;
                }
                let row = sqlx::query_as(sql)
                    .bind(username)
                    .bind(&key)
                    .bind(email)
                    .bind(hash)
                    .bind(to_millis(created_at))
                    .bind(flag)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row)
            }
            .await);
        let (id, is_staff) = match inserted {
            Ok(Some(row)) => row,
            // Closed, and another account was first.
            Ok(None) => return Err(AccountError::Refused(AccountRefusal::SignUpClosed)),
            Err(e) if is_unique_violation(&e) => {
                return Err(AccountError::Refused(AccountRefusal::UsernameTaken))
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(user_id = id, is_staff, "user created");
        Ok(User {
            id,
            username: username.to_owned(),
            email: (!email.is_empty()).then(|| email.to_owned()),
            is_staff,
            is_active: true,
            created_at,
            last_login_at: None,
            email_verified_at: None,
            sign_in_alerts: true,
        })
    }

    /// Self-service sign-up: a non-staff user, refused with [`AccountRefusal::SignUpClosed`] unless
    /// [`AccountsConfig::signup_open`], and with [`AccountRefusal::Throttled`] beyond
    /// [`AccountsConfig::signup_limits`] (every attempt with valid input counts, a taken username
    /// too). A taken username is answered after the same password hash as a new account. With
    /// [`AccountsConfig::require_verified_email`], an email address is required.
    pub async fn sign_up(
        &self,
        username: &str,
        email: Option<&str>,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<User, AccountError> {
        if !self.inner.config.signup_open {
            return Err(AccountError::Refused(AccountRefusal::SignUpClosed));
        }
        self.self_service_sign_up(username, email, password, client_ip, Staff::Given(false))
            .await
    }

    /// [`Accounts::sign_up`], except that while no user exists the account is made staff, whether or
    /// not sign-up is open: the sign-up page's first run. However many arrive at once, exactly one
    /// becomes that first staff account (decided by one statement in the database); with sign-up
    /// closed the others get [`AccountRefusal::SignUpClosed`], with it open they become ordinary
    /// users.
    pub async fn sign_up_first_or_open(
        &self,
        username: &str,
        email: Option<&str>,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<User, AccountError> {
        let open = self.inner.config.signup_open;
        // Refused at once when there is no first account to make; the insert decides the races.
        if !open && self.has_users().await? {
            return Err(AccountError::Refused(AccountRefusal::SignUpClosed));
        }
        self.self_service_sign_up(
            username,
            email,
            password,
            client_ip,
            Staff::FirstOrOpen { open },
        )
        .await
    }

    async fn self_service_sign_up(
        &self,
        username: &str,
        email: Option<&str>,
        password: &str,
        client_ip: Option<IpAddr>,
        staff: Staff,
    ) -> Result<User, AccountError> {
        let new = NewUser {
            username: username.to_owned(),
            email: email.map(str::to_owned),
            password: password.to_owned(),
            is_staff: false,
        };
        let (username, email) = self.checked_new_user(&new)?;
        if self.inner.config.require_verified_email && email.is_empty() {
            return Err(AccountRefusal::EmailRequired.into());
        }
        self.count_sign_up(client_ip).await?;
        let hash = self.hash_new_password(password).await?;
        self.insert_user(username, email, &hash, staff).await
    }

    /// Counts a sign-up for its client network, then for everyone; refuses it once either count is
    /// over its limit in the current window. A sign-up refused for its network is not counted for
    /// everyone, so one client cannot close sign-up for the rest.
    async fn count_sign_up(&self, client_ip: Option<IpAddr>) -> Result<(), AccountError> {
        let limits = &self.inner.config.signup_limits;
        let ip = client_ip.map(ip_subject);
        let counts = [
            (throttle::SIGN_UP_IP, ip.as_deref(), limits.per_ip),
            (throttle::SIGN_UP_ALL, Some("*"), limits.total),
        ];
        self.count_in_windows(&counts, limits.window, "sign-ups throttled")
            .await
    }

    /// Counts one attempt for each `(kind, subject, limit)` in turn, in fixed windows of `window`,
    /// and refuses with [`AccountRefusal::Throttled`] at the first count over its limit (those after
    /// it are then not counted). A missing subject or a `0` limit counts nothing. Only the
    /// client-network kinds log their subject: the others are keyed hashes of what was typed.
    pub(super) async fn count_in_windows(
        &self,
        counts: &[(&str, Option<&str>, u32)],
        window: Duration,
        message: &'static str,
    ) -> Result<(), AccountError> {
        for &(kind, subject, limit) in counts {
            let Some(subject) = subject.filter(|_| limit > 0) else {
                continue;
            };
            let now = to_millis(now());
            let (count, window_end): (i64, i64) =
                with_pool!(self.db(), |pool| sqlx::query_as(throttle::COUNT_SIGN_UP)
                    .bind(kind)
                    .bind(subject)
                    .bind(now)
                    .bind(now.saturating_add(millis(window)))
                    .fetch_one(pool)
                    .await)?;
            if count > i64::from(limit) {
                let by_network = kind == throttle::SIGN_UP_IP || kind == throttle::RESET_IP;
                let client = by_network.then_some(subject);
                tracing::warn!(kind, client, count, "{message}");
                let left = u64::try_from(window_end.saturating_sub(now)).unwrap_or(0);
                return Err(AccountRefusal::throttled(Duration::from_millis(left.max(1))).into());
            }
        }
        Ok(())
    }
}
