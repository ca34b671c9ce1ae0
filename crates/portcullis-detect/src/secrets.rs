//! Secret formats: provider tokens (literal-prefixed), private keys, JWTs, URLs with passwords,
//! connection strings, and generic `key = value` assignments. Patterns follow the providers'
//! documented token formats (and the public rule sets of gitleaks and detect-secrets).

use crate::rules::{Check, Spec, pre_airtable, pre_userinfo, sec};

macro_rules! s {
    ($kind:literal, [$($t:literal),+], $re:literal) => {
        sec(concat!("secret.", $kind), &[$($t),+], $re)
    };
    ($kind:literal, [$($t:literal),+], $re:literal, $($f:ident : $v:expr),+) => {
        Spec { $($f: $v),+, ..sec(concat!("secret.", $kind), &[$($t),+], $re) }
    };
}

pub(crate) static SPECS: &[Spec] = &[
    // --- cloud ---
    s!(
        "aws_access_key",
        [
            "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA"
        ],
        r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z2-7]{16}\b"
    ),
    s!("aws_secret_key", ["aws_secret", "AWS_SECRET", "aws_secret_access_key", "SecretAccessKey", "secret_access_key"],
        r#"(?i)(?:aws_?)?secret_?(?:access_?)?key["']?\s*(?:[:=]|=>)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+]|$)"#, check: Check::Entropy(3.5), left_bound: false),
    s!(
        "aws_mws_key",
        ["amzn.mws."],
        r"amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    ),
    s!("gcp_api_key", ["AIza"], r"AIza[0-9A-Za-z_-]{35}\b"),
    s!(
        "gcp_oauth_client_secret",
        ["GOCSPX-"],
        r"GOCSPX-[A-Za-z0-9_-]{28}"
    ),
    s!(
        "gcp_oauth_access_token",
        ["ya29."],
        r"ya29\.[0-9A-Za-z_-]{30,}"
    ),
    s!("gcp_service_account_key", ["private_key_id\""], r#"private_key_id"\s*:\s*"([0-9a-f]{40})""#, left_bound: false),
    s!("firebase_fcm_server_key", [":APA91b"], r"AAAA[A-Za-z0-9_-]{7}:APA91b[A-Za-z0-9_-]{134}", back: 12, max_len: 160, left_bound: false),
    s!(
        "azure_storage_key",
        ["AccountKey="],
        r"AccountKey=([A-Za-z0-9+/]{86}==)"
    ),
    s!("azure_sas_token", ["sig="], r"sig=([A-Za-z0-9%+/]{43,}(?:%3D|=)?)", left_bound: false, check: Check::Entropy(3.5), conf: 0.8),
    s!("azure_ad_client_secret", ["~"], r"(?-u:\b)[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}", back: 5, max_len: 45, left_bound: false, conf: 0.85),
    s!("alibaba_access_key", ["LTAI"], r"LTAI[A-Za-z0-9]{20}\b"),
    s!("tencent_secret_id", ["AKID"], r"AKID[A-Za-z0-9]{32}\b"),
    s!("yandex_api_key", ["AQVN"], r"AQVN[A-Za-z0-9_-]{35,38}\b"),
    s!(
        "yandex_iam_token",
        ["t1."],
        r"t1\.[A-Z0-9a-z_-]+={0,2}\.[A-Z0-9a-z_-]{86}={0,2}"
    ),
    s!(
        "ibm_cloud_iam_key",
        [
            "ibm_api_key",
            "IBM_API_KEY",
            "ibmcloud_api_key",
            "IBMCLOUD_API_KEY"
        ],
        r#"(?i)ibm(?:cloud)?_api_key["']?\s*[:=]\s*["']?([A-Za-z0-9_-]{44})\b"#
    ),
    s!("digitalocean_pat", ["dop_v1_"], r"dop_v1_[a-f0-9]{64}\b"),
    s!("digitalocean_oauth", ["doo_v1_"], r"doo_v1_[a-f0-9]{64}\b"),
    s!(
        "digitalocean_refresh",
        ["dor_v1_"],
        r"dor_v1_[a-f0-9]{64}\b"
    ),
    s!("heroku_api_key_v2", ["HRKU-"], r"HRKU-AA[A-Za-z0-9_-]{58}"),
    s!(
        "heroku_api_key",
        ["heroku", "HEROKU", "Heroku"],
        r#"(?i)heroku[a-z_ -]{0,20}(?:key|token)["']?\s*[:=]\s*["']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"#
    ),
    s!("fly_io_token", ["fo1_"], r"fo1_[A-Za-z0-9_-]{43}"),
    s!(
        "fly_io_macaroon",
        ["FlyV1 fm"],
        r"FlyV1 fm\d_[A-Za-z0-9+/=,_-]{100,}"
    ),
    s!(
        "cloudflare_origin_ca_key",
        ["v1.0-"],
        r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}"
    ),
    s!(
        "cloudflare_api_token",
        ["cloudflare", "CLOUDFLARE", "CF_API_TOKEN", "cf_api_token"],
        r#"(?i)(?:cloudflare|cf)[a-z_ -]{0,20}(?:token|key)["']?\s*[:=]\s*["']?([A-Za-z0-9_-]{40})\b"#
    ),
    s!("scalingo_token", ["tk-us-"], r"tk-us-[A-Za-z0-9_-]{48}"),
    s!("render_api_key", ["rnd_"], r"rnd_[A-Za-z0-9]{32}\b"),
    s!("supabase_pat", ["sbp_"], r"sbp_[a-f0-9]{40}\b"),
    s!(
        "supabase_secret_key",
        ["sb_secret_"],
        r"sb_secret_[A-Za-z0-9_-]{31,}"
    ),
    s!("netlify_pat", ["nfp_"], r"nfp_[A-Za-z0-9]{36}\b"),
    s!(
        "vercel_token",
        ["vercel_token", "VERCEL_TOKEN"],
        r#"(?i)vercel_token["']?\s*[:=]\s*["']?([A-Za-z0-9]{24})\b"#
    ),
    s!(
        "tailscale_key",
        ["tskey-"],
        r"tskey-(?:auth|api|client|scim|webhook)-[A-Za-z0-9]{8,}-[A-Za-z0-9]{20,}"
    ),
    s!(
        "hashicorp_vault_token",
        ["hvs."],
        r"hvs\.[A-Za-z0-9_-]{90,120}"
    ),
    s!(
        "hashicorp_vault_batch_token",
        ["hvb."],
        r"hvb\.[A-Za-z0-9_-]{138,300}"
    ),
    s!("terraform_cloud_token", [".atlasv1."], r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}", back: 14, max_len: 90, left_bound: false),
    s!("pulumi_token", ["pul-"], r"pul-[a-f0-9]{40}\b"),
    s!(
        "doppler_token",
        [
            "dp.pt.",
            "dp.st.",
            "dp.sa.",
            "dp.ct.",
            "dp.scim.",
            "dp.audit."
        ],
        r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}\b"
    ),
    s!("databricks_token", ["dapi"], r"dapi[a-f0-9]{32}(?:-\d)?\b"),
    s!(
        "dynatrace_token",
        ["dt0c01."],
        r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}"
    ),
    s!("new_relic_user_key", ["NRAK-"], r"NRAK-[A-Z0-9]{27}\b"),
    s!("new_relic_browser_key", ["NRJS-"], r"NRJS-[a-f0-9]{19}\b"),
    s!("new_relic_insert_key", ["NRII-"], r"NRII-[A-Za-z0-9_-]{32}"),
    s!(
        "grafana_api_key",
        ["eyJrIjoi"],
        r"eyJrIjoi[A-Za-z0-9]{70,400}={0,2}"
    ),
    s!(
        "grafana_cloud_token",
        ["glc_"],
        r"glc_[A-Za-z0-9+/]{32,400}={0,2}"
    ),
    s!(
        "grafana_service_account_token",
        ["glsa_"],
        r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\b"
    ),
    s!(
        "datadog_api_key",
        [
            "datadog",
            "DATADOG",
            "dd_api_key",
            "DD_API_KEY",
            "dd_app_key",
            "DD_APP_KEY",
            "DD-API-KEY"
        ],
        r#"(?i)(?:datadog|dd)[a-z_ -]{0,20}(?:api|app(?:lication)?)[_ -]?key["']?\s*[:=]\s*["']?([a-f0-9]{32}(?:[a-f0-9]{8})?)\b"#
    ),
    s!(
        "sentry_org_token",
        ["sntrys_eyJ"],
        r"sntrys_eyJ[A-Za-z0-9+/=_-]{50,}"
    ),
    s!("sentry_user_token", ["sntryu_"], r"sntryu_[a-f0-9]{64}\b"),
    s!(
        "kubernetes_bootstrap_token",
        ["bootstrap-token-"],
        r"bootstrap-token-([a-z0-9]{6}\.[a-z0-9]{16})\b"
    ),
    // --- code hosting and CI ---
    s!("github_pat", ["ghp_"], r"ghp_[A-Za-z0-9]{36}\b"),
    s!("github_oauth_token", ["gho_"], r"gho_[A-Za-z0-9]{36}\b"),
    s!(
        "github_app_token",
        ["ghu_", "ghs_"],
        r"gh[us]_[A-Za-z0-9]{36}\b"
    ),
    s!(
        "github_refresh_token",
        ["ghr_"],
        r"ghr_[A-Za-z0-9]{36,76}\b"
    ),
    s!(
        "github_fine_grained_pat",
        ["github_pat_"],
        r"github_pat_[A-Za-z0-9_]{82}"
    ),
    s!("gitlab_pat", ["glpat-"], r"glpat-[A-Za-z0-9_-]{20,}"),
    s!(
        "gitlab_pipeline_trigger_token",
        ["glptt-"],
        r"glptt-[0-9a-f]{40}\b"
    ),
    s!(
        "gitlab_runner_token",
        ["glrt-", "GR1348941"],
        r"(?:glrt-|GR1348941)[A-Za-z0-9_-]{20,}"
    ),
    s!("gitlab_deploy_token", ["gldt-"], r"gldt-[A-Za-z0-9_-]{20,}"),
    s!("gitlab_feed_token", ["glft-"], r"glft-[A-Za-z0-9_-]{20,}"),
    s!(
        "gitlab_oauth_secret",
        ["gloas-"],
        r"gloas-[A-Za-z0-9_-]{64}"
    ),
    s!(
        "gitlab_scim_token",
        ["glsoat-"],
        r"glsoat-[A-Za-z0-9_-]{20,}"
    ),
    s!(
        "gitlab_cicd_job_token",
        ["glcbt-"],
        r"glcbt-[0-9a-fA-F]{1,5}_[A-Za-z0-9_-]{20}"
    ),
    s!(
        "bitbucket_app_password",
        ["ATBB"],
        r"ATBB[A-Za-z0-9_=.-]{32}\b"
    ),
    s!(
        "atlassian_api_token",
        ["ATATT3"],
        r"ATATT3[A-Za-z0-9_=+/-]{150,250}"
    ),
    s!(
        "circleci_pat",
        ["CCIPAT_"],
        r"CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}\b"
    ),
    s!("buildkite_token", ["bkua_"], r"bkua_[a-f0-9]{40}\b"),
    s!("octopus_deploy_key", ["API-"], r"API-[A-Z0-9]{26}\b", conf: 0.75),
    s!(
        "harness_pat",
        ["pat."],
        r"pat\.[A-Za-z0-9_-]{22}\.[a-f0-9]{24}\.[A-Za-z0-9]{20}\b"
    ),
    s!("jfrog_api_key", ["AKCp"], r"AKCp[A-Za-z0-9]{69}\b"),
    s!(
        "jfrog_identity_token",
        ["cmVmdGtu"],
        r"cmVmdGtu[A-Za-z0-9]{56}\b"
    ),
    s!("npm_token", ["npm_"], r"npm_[A-Za-z0-9]{36}\b"),
    s!("npmrc_auth_token", ["authToken="], r"authToken=([A-Za-z0-9_.+/=-]{20,})", left_bound: false, check: Check::NotPlaceholder),
    s!(
        "pypi_token",
        ["pypi-AgEIcHlwaS5vcmc"],
        r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"
    ),
    s!("rubygems_key", ["rubygems_"], r"rubygems_[a-f0-9]{48}\b"),
    s!("nuget_key", ["oy2"], r"oy2[a-z0-9]{43}\b", conf: 0.75),
    s!("clojars_token", ["CLOJARS_"], r"CLOJARS_[a-z0-9]{60}\b"),
    s!(
        "dockerhub_pat",
        ["dckr_pat_"],
        r"dckr_pat_[A-Za-z0-9_-]{27}"
    ),
    s!(
        "docker_org_token",
        ["dckr_oat_"],
        r"dckr_oat_[A-Za-z0-9_-]{32}"
    ),
    s!("readme_api_key", ["rdme_"], r"rdme_[a-z0-9]{70}\b"),
    s!(
        "postman_api_key",
        ["PMAK-"],
        r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}\b"
    ),
    s!("prefect_api_key", ["pnu_"], r"pnu_[A-Za-z0-9]{36}\b"),
    s!(
        "snyk_token",
        ["snyk_token", "SNYK_TOKEN"],
        r#"(?i)snyk_token["']?\s*[:=]\s*["']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"#
    ),
    s!(
        "sonarqube_token",
        ["squ_", "sqp_", "sqa_"],
        r"sq[upa]_[a-f0-9]{40}\b"
    ),
    s!("frameio_token", ["fio-u-"], r"fio-u-[A-Za-z0-9_=-]{64}"),
    // --- chat and collaboration ---
    s!(
        "slack_bot_token",
        ["xoxb-"],
        r"xoxb-[0-9]{10,13}-[0-9]{10,13}-?[A-Za-z0-9]{24,34}"
    ),
    s!(
        "slack_user_token",
        ["xoxp-", "xoxe-"],
        r"xox[pe](?:-[0-9]{10,13}){3}-[A-Za-z0-9]{28,34}"
    ),
    s!(
        "slack_app_token",
        ["xapp-"],
        r"xapp-\d-[A-Z0-9]{9,11}-\d{10,13}-[a-z0-9]{64}"
    ),
    s!(
        "slack_config_token",
        ["xoxe.xox"],
        r"xoxe\.xox[bp]-\d-[A-Z0-9]{163,166}"
    ),
    s!(
        "slack_refresh_token",
        ["xoxe-1-"],
        r"xoxe-1-[A-Za-z0-9-]{140,150}"
    ),
    s!(
        "slack_legacy_token",
        ["xoxo-", "xoxs-", "xoxa-", "xoxr-"],
        r"xox[osar]-(?:\d+-)+[A-Za-z0-9]{8,}"
    ),
    s!("slack_webhook", ["hooks.slack.com/"], r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,100}", left_bound: false),
    s!("discord_webhook", ["discord.com/api/webhooks/", "discordapp.com/api/webhooks/"], r"discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]{60,68}", left_bound: false),
    s!(
        "discord_bot_token",
        ["discord", "DISCORD"],
        r#"(?i)discord[a-z_ -]{0,20}(?:token|key)["']?\s*[:=]\s*["']?([MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38})"#
    ),
    s!("teams_webhook", [".webhook.office.com/webhookb2/"], r"\.webhook\.office\.com/webhookb2/[A-Za-z0-9@/_-]{40,300}", left_bound: false),
    s!("telegram_bot_token", [":AA"], r"(?-u:\b)\d{8,10}:AA[A-Za-z0-9_-]{33}\b", back: 10, max_len: 40, left_bound: false),
    s!("linear_api_key", ["lin_api_"], r"lin_api_[A-Za-z0-9]{40}\b"),
    s!("notion_token", ["ntn_"], r"ntn_[0-9]{11}[A-Za-z0-9]{35}\b"),
    s!("notion_integration_secret", ["secret_"], r"secret_[A-Za-z0-9]{43}\b", conf: 0.8),
    s!("airtable_pat", ["pat"], r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}\b", pre: Some(pre_airtable)),
    s!(
        "asana_pat",
        ["asana", "ASANA"],
        r#"(?i)asana[a-z_ -]{0,20}(?:token|key|pat)["']?\s*[:=]\s*["']?([0-9]/[0-9]{16}:[A-Za-z0-9]{32})"#
    ),
    s!("typeform_token", ["tfp_"], r"tfp_[A-Za-z0-9_.=-]{59}"),
    s!("contentful_pat", ["CFPAT-"], r"CFPAT-[A-Za-z0-9_-]{43}"),
    s!("dropbox_token", ["sl."], r"sl\.[A-Za-z0-9_-]{130,152}"),
    s!(
        "zendesk_token",
        ["zendesk", "ZENDESK"],
        r#"(?i)zendesk[a-z_ -]{0,20}(?:token|key)["']?\s*[:=]\s*["']?([A-Za-z0-9]{40})\b"#
    ),
    s!(
        "intercom_token",
        ["intercom", "INTERCOM"],
        r#"(?i)intercom[a-z_ -]{0,20}(?:token|key)["']?\s*[:=]\s*["']?([A-Za-z0-9=_-]{59,60})"#
    ),
    s!(
        "twitter_bearer_token",
        ["AAAAAAAAAAAAAAAAAAAAA"],
        r"AAAAAAAAAAAAAAAAAAAAA[A-Za-z0-9%]{30,}"
    ),
    s!(
        "facebook_access_token",
        ["EAAB", "EAAC", "EAAG", "EAAJ"],
        r"EAA[BCGJ][A-Za-z0-9]{90,}"
    ),
    s!(
        "mapbox_secret_token",
        ["sk.eyJ"],
        r"sk\.eyJ[A-Za-z0-9_-]{50,}\.[A-Za-z0-9_-]{20,}"
    ),
    // --- payment and commerce ---
    s!(
        "stripe_secret_key",
        ["sk_live_"],
        r"sk_live_[A-Za-z0-9]{24,99}\b"
    ),
    s!("stripe_test_secret_key", ["sk_test_"], r"sk_test_[A-Za-z0-9]{24,99}\b", conf: 0.7),
    s!(
        "stripe_restricted_key",
        ["rk_live_", "rk_test_"],
        r"rk_(?:live|test)_[A-Za-z0-9]{24,99}\b"
    ),
    s!(
        "stripe_webhook_secret",
        ["whsec_"],
        r"whsec_[A-Za-z0-9+/=]{32,}"
    ),
    s!(
        "square_access_token",
        ["sq0atp-"],
        r"sq0atp-[0-9A-Za-z_-]{22}"
    ),
    s!(
        "square_oauth_secret",
        ["sq0csp-"],
        r"sq0csp-[0-9A-Za-z_-]{43}"
    ),
    s!(
        "paypal_braintree_token",
        ["access_token$production$"],
        r"access_token\$production\$[0-9a-z]{16}\$[0-9a-f]{32}"
    ),
    s!(
        "shopify_access_token",
        ["shpat_"],
        r"shpat_[a-fA-F0-9]{32}\b"
    ),
    s!(
        "shopify_custom_app_token",
        ["shpca_"],
        r"shpca_[a-fA-F0-9]{32}\b"
    ),
    s!(
        "shopify_private_app_token",
        ["shppa_"],
        r"shppa_[a-fA-F0-9]{32}\b"
    ),
    s!(
        "shopify_shared_secret",
        ["shpss_"],
        r"shpss_[a-fA-F0-9]{32}\b"
    ),
    s!(
        "flutterwave_secret_key",
        ["FLWSECK"],
        r"FLWSECK(?:_TEST)?-[a-h0-9]{32}-X"
    ),
    s!("gocardless_token", ["live_"], r"live_[A-Za-z0-9_=-]{40}\b", conf: 0.75),
    s!(
        "duffel_token",
        ["duffel_"],
        r"duffel_(?:test|live)_[A-Za-z0-9_=-]{43}"
    ),
    s!(
        "shippo_token",
        ["shippo_"],
        r"shippo_(?:live|test)_[a-f0-9]{40}\b"
    ),
    s!(
        "easypost_key",
        ["EZAK", "EZTK"],
        r"EZ[AT]K[A-Za-z0-9]{54}\b"
    ),
    s!("coinbase_key", ["organizations/"], r"organizations/[0-9a-f-]{36}/apiKeys/[0-9a-f-]{36}", conf: 0.8),
    s!(
        "plaid_secret",
        ["plaid", "PLAID"],
        r#"(?i)plaid[a-z_ -]{0,20}secret["']?\s*[:=]\s*["']?([a-f0-9]{30})\b"#
    ),
    // --- e-mail and messaging ---
    s!(
        "sendgrid_api_key",
        ["SG."],
        r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"
    ),
    s!("mailgun_api_key", ["key-"], r"key-[0-9a-zA-Z]{32}\b", conf: 0.75),
    s!("mailchimp_api_key", ["-us"], r"(?-u:\b)[0-9a-f]{32}-us[0-9]{1,2}\b", back: 32, max_len: 8, left_bound: false),
    s!(
        "brevo_api_key",
        ["xkeysib-"],
        r"xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}\b"
    ),
    s!("twilio_api_key", ["SK"], r"SK[0-9a-fA-F]{32}\b", conf: 0.75),
    s!(
        "postmark_token",
        ["postmark", "POSTMARK"],
        r#"(?i)postmark[a-z_ -]{0,20}(?:token|key)["']?\s*[:=]\s*["']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"#
    ),
    // --- AI providers ---
    s!(
        "openai_api_key",
        ["sk-"],
        r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,200}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48})\b"
    ),
    s!(
        "anthropic_api_key",
        ["sk-ant-"],
        r"sk-ant-(?:api|admin|sid)\d{2}-[A-Za-z0-9_-]{80,110}"
    ),
    s!(
        "openrouter_api_key",
        ["sk-or-v1-"],
        r"sk-or-v1-[a-f0-9]{64}\b"
    ),
    s!("huggingface_token", ["hf_"], r"hf_[A-Za-z]{34}\b"),
    s!(
        "huggingface_org_token",
        ["api_org_"],
        r"api_org_[A-Za-z]{34}\b"
    ),
    s!("groq_api_key", ["gsk_"], r"gsk_[A-Za-z0-9]{52}\b"),
    s!("xai_api_key", ["xai-"], r"xai-[A-Za-z0-9]{80}\b"),
    s!("perplexity_api_key", ["pplx-"], r"pplx-[A-Za-z0-9]{48}\b"),
    s!("replicate_api_token", ["r8_"], r"r8_[A-Za-z0-9]{37}\b"),
    s!(
        "langsmith_api_key",
        ["lsv2_"],
        r"lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}\b"
    ),
    s!(
        "cohere_api_key",
        ["cohere", "COHERE", "co_api_key", "CO_API_KEY"],
        r#"(?i)(?:cohere|co)[a-z_ -]{0,20}(?:api)?_?key["']?\s*[:=]\s*["']?([A-Za-z0-9]{40})\b"#
    ),
    s!(
        "mistral_api_key",
        ["mistral", "MISTRAL"],
        r#"(?i)mistral[a-z_ -]{0,20}(?:api)?_?key["']?\s*[:=]\s*["']?([A-Za-z0-9]{32})\b"#
    ),
    // --- identity and secrets managers ---
    s!(
        "onepassword_service_token",
        ["ops_eyJ"],
        r"ops_eyJ[A-Za-z0-9+/]{250,}={0,3}"
    ),
    s!(
        "onepassword_secret_key",
        ["A3-"],
        r"A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}\b"
    ),
    s!(
        "age_secret_key",
        ["AGE-SECRET-KEY-1"],
        r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"
    ),
    s!(
        "okta_api_token",
        ["okta", "OKTA"],
        r#"(?i)okta[a-z_ -]{0,20}(?:token|key)["']?\s*[:=]\s*["']?(00[A-Za-z0-9_-]{40})\b"#
    ),
    s!(
        "planetscale_token",
        ["pscale_"],
        r"pscale_(?:tkn|oauth|pw)_[A-Za-z0-9_=.-]{32,64}"
    ),
    // --- keys, tokens and credentials in general ---
    s!("private_key", ["-----BEGIN"],
        r"-----BEGIN[ A-Z0-9_-]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{20,}?-----END[ A-Z0-9_-]*PRIVATE KEY(?: BLOCK)?-----)?",
        max_len: 17000, conf: 0.95),
    s!("putty_private_key", ["PuTTY-User-Key-File-"], r"PuTTY-User-Key-File-[23]: [a-z0-9-]+", conf: 0.95),
    s!("jwt", ["eyJ"], r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*", max_len: 8192, conf: 0.85, prio: 2),
    s!("url_password", ["://"],
        r#"://[^\s:/@"'<>]{1,64}:([^\s:/@"'<>]{3,128})@[A-Za-z0-9.\[\]_-]{1,253}"#,
        max_len: 460, left_bound: false, pre: Some(pre_userinfo), check: Check::NotPlaceholder, conf: 0.9),
    s!("connection_string_password", ["Password=", "password=", "PWD=", "Pwd=", "pwd="],
        r#"(?:Password|password|PWD|Pwd|pwd)=([^;"'\s]{4,128})"#, check: Check::NotPlaceholder, conf: 0.85, prio: 2, left_bound: false),
    s!("basic_auth_header", ["Authorization", "authorization", "AUTHORIZATION"],
        r#"(?i)authorization["']?\s*[:=]\s*["']?basic\s+([A-Za-z0-9+/]{12,}={0,2})"#, check: Check::NotPlaceholder),
    s!("bearer_token", ["Bearer ", "bearer ", "BEARER "], r"(?i)bearer\s+([A-Za-z0-9_.~+/-]{20,}=*)", check: Check::Entropy(3.0), conf: 0.8, prio: 2),
    s!("generic_assignment",
        ["password", "passwd", "pwd", "secret", "api_key", "apikey", "api-key", "access_token", "auth_token",
         "client_secret", "private_key", "secret_key", "token", "credential", "pass"],
        r#"(?i)(?:password|passwd|pwd|pass|secret|api[_-]?key|access[_-]?token|auth[_-]?token|token|credentials?|private[_-]?key)[A-Za-z0-9_.-]{0,20}["']?\s*(?:[:=]|:=|=>|==)\s*[rbuf]?["'`]?([^\s"'`,;)\]}]{6,200})"#,
        check: Check::Generic, conf: 0.7, prio: 1, left_bound: false, case_variants: true),
];

#[cfg(test)]
mod tests {
    use crate::{Category, Detector, DetectorConfig};

    fn det() -> Detector {
        Detector::new(&DetectorConfig {
            categories: vec![Category::Secret],
            ..Default::default()
        })
        .unwrap()
    }

    fn kinds(t: &str) -> Vec<String> {
        det().scan_text(t).into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn at_least_100_formats() {
        let n = super::SPECS.len();
        assert!(n >= 100, "{n} secret formats");
    }

    #[test]
    fn every_rule_compiles() {
        det();
    }

    #[test]
    fn providers_positive() {
        let cases = [
            ("key AKIAZ3MQXWEKDDFN7BQR here", "secret.aws_access_key"),
            (
                "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
                "secret.github_pat",
            ),
            ("token: glpat-abcdefghij0123456789", "secret.gitlab_pat"),
            (
                "xoxb-1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
                "secret.slack_bot_token",
            ),
            (
                "sk_live_4eC39HqLyjWDarjtT1zdp7dc12345",
                "secret.stripe_secret_key",
            ),
            (
                "AIzaSyD-1234567890abcdefghijklmnopqrstu",
                "secret.gcp_api_key",
            ),
            (
                "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                "secret.sendgrid_api_key",
            ),
            (
                "npm_abcdefghijklmnopqrstuvwxyz0123456789",
                "secret.npm_token",
            ),
            (
                "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
                "secret.huggingface_token",
            ),
            (
                "sk-ant-api03-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "secret.anthropic_api_key",
            ),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "secret.jwt",
            ),
            (
                "postgres://admin:S3cr3tPassw0rd@db.example.com:5432/app",
                "secret.url_password",
            ),
            ("DB_PASSWORD=\"q8Z!xv2#Lm\"", "secret.generic_assignment"),
        ];
        for (text, kind) in cases {
            let k = kinds(text);
            assert!(
                k.iter().any(|x| x == kind),
                "{text:?} gave {k:?}, wanted {kind}"
            );
        }
    }

    #[test]
    fn private_key_block() {
        let t = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4n0123456789abcdefghijklmnop\n-----END RSA PRIVATE KEY-----";
        let f = det().scan_text(t);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, "secret.private_key");
        assert_eq!((f[0].start, f[0].end), (0, t.len()));
    }

    #[test]
    fn negatives() {
        for t in [
            "the task-based approach works",
            "AKIAIOSFODNN7EXAMPLE is the documented example key",
            "password = ${DB_PASSWORD}",
            "password: changeme",
            "postgres://user:password@localhost/db",
            "token = get_token()",
            "see ghp_short",
            "const apiKey = process.env.API_KEY;",
        ] {
            let k = kinds(t);
            assert!(k.is_empty(), "{t:?} gave {k:?}");
        }
    }

    #[test]
    fn span_is_the_value() {
        let t = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz9Qa8Lk3P\n";
        let f = det().scan_text(t);
        assert_eq!(f[0].kind, "secret.aws_secret_key");
        assert_eq!(
            &t[f[0].start..f[0].end],
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz9Qa8Lk3P"
        );
    }
}
