"""0001_initial: frozen by store.migrations.freeze; do not edit."""

from __future__ import annotations

from typing import Any

SQLITE = [
    'CREATE TABLE "setting" ("key" VARCHAR(64) NOT NULL PRIMARY KEY, "value" TEXT NOT NULL)',
    'CREATE TABLE "currency" ("id" INTEGER NOT NULL PRIMARY KEY, "code" VARCHAR(3) NOT NULL, '
    '"prefix" VARCHAR(8) NOT NULL, "suffix" VARCHAR(8) NOT NULL, "decimals" INTEGER NOT NULL, '
    '"rate" VARCHAR(32) NOT NULL, "is_default" INTEGER NOT NULL)',
    'CREATE TABLE "client_group" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(100) NOT '
    'NULL, "colour" VARCHAR(16) NOT NULL, "discount_bp" INTEGER NOT NULL, "separate_invoices" '
    "INTEGER NOT NULL)",
    'CREATE TABLE "tax_rule" ("id" INTEGER NOT NULL PRIMARY KEY, "level" INTEGER NOT NULL, "name" '
    'VARCHAR(100) NOT NULL, "country" VARCHAR(2) NOT NULL, "state" VARCHAR(100) NOT NULL, '
    '"rate_e4" INTEGER NOT NULL)',
    'CREATE TABLE "custom_field" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(100) NOT '
    'NULL, "type" VARCHAR(16) NOT NULL, "options" TEXT NOT NULL, "required" INTEGER NOT NULL, '
    '"admin_only" INTEGER NOT NULL, "regex" VARCHAR(500) NOT NULL, "sort_order" INTEGER NOT NULL)',
    'CREATE TABLE "security_question" ("id" INTEGER NOT NULL PRIMARY KEY, "question" VARCHAR(255) '
    "NOT NULL)",
    'CREATE TABLE "client" ("id" INTEGER NOT NULL PRIMARY KEY, "first_name" VARCHAR(100) NOT '
    'NULL, "last_name" VARCHAR(100) NOT NULL, "company" VARCHAR(150) NOT NULL, "email" '
    'VARCHAR(254) NOT NULL, "address1" VARCHAR(150) NOT NULL, "address2" VARCHAR(150) NOT NULL, '
    '"city" VARCHAR(100) NOT NULL, "state" VARCHAR(100) NOT NULL, "postcode" VARCHAR(20) NOT '
    'NULL, "country" VARCHAR(2) NOT NULL, "phone" VARCHAR(20) NOT NULL, "tax_id" VARCHAR(50) NOT '
    'NULL, "language" VARCHAR(35) NOT NULL, "status" VARCHAR(16) NOT NULL, "currency_id" INTEGER '
    'NOT NULL, "group_id" INTEGER, "payment_method" VARCHAR(32) NOT NULL, "late_fees_exempt" '
    'INTEGER NOT NULL, "overdue_notices_disabled" INTEGER NOT NULL, "tax_exempt" INTEGER NOT '
    'NULL, "separate_invoices" INTEGER NOT NULL, "cc_processing_disabled" INTEGER NOT NULL, '
    '"status_locked" INTEGER NOT NULL, "marketing_opt_out" INTEGER NOT NULL, "admin_notes" TEXT '
    'NOT NULL, "password_hash" VARCHAR(255) NOT NULL, "password_must_change" INTEGER NOT NULL, '
    '"security_question_id" INTEGER, "security_answer_hash" VARCHAR(255) NOT NULL, "totp_secret" '
    'VARCHAR(64) NOT NULL, "totp_last_step" INTEGER NOT NULL, "created_at" DATETIME NOT NULL, '
    '"updated_at" DATETIME NOT NULL, "last_login_at" DATETIME, "last_login_ip" VARCHAR(45) NOT '
    'NULL, "version" INTEGER NOT NULL, "billing_contact_id" INTEGER, FOREIGN KEY ("currency_id") '
    'REFERENCES "currency" ("id") ON DELETE RESTRICT, FOREIGN KEY ("group_id") REFERENCES '
    '"client_group" ("id") ON DELETE SET NULL, FOREIGN KEY ("security_question_id") REFERENCES '
    '"security_question" ("id") ON DELETE SET NULL, FOREIGN KEY ("billing_contact_id") REFERENCES '
    '"contact" ("id") ON DELETE SET NULL)',
    'CREATE TABLE "contact" ("id" INTEGER NOT NULL PRIMARY KEY, "client_id" INTEGER NOT NULL, '
    '"first_name" VARCHAR(100) NOT NULL, "last_name" VARCHAR(100) NOT NULL, "company" '
    'VARCHAR(150) NOT NULL, "email" VARCHAR(254) NOT NULL, "address1" VARCHAR(150) NOT NULL, '
    '"address2" VARCHAR(150) NOT NULL, "city" VARCHAR(100) NOT NULL, "state" VARCHAR(100) NOT '
    'NULL, "postcode" VARCHAR(20) NOT NULL, "country" VARCHAR(2) NOT NULL, "phone" VARCHAR(20) '
    'NOT NULL, FOREIGN KEY ("client_id") REFERENCES "client" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "custom_field_value" ("id" INTEGER NOT NULL PRIMARY KEY, "client_id" INTEGER '
    'NOT NULL, "field_id" INTEGER NOT NULL, "value" TEXT NOT NULL, FOREIGN KEY ("client_id") '
    'REFERENCES "client" ("id") ON DELETE CASCADE, FOREIGN KEY ("field_id") REFERENCES '
    '"custom_field" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "stored_card" ("id" INTEGER NOT NULL PRIMARY KEY, "client_id" INTEGER NOT NULL, '
    '"gateway" VARCHAR(32) NOT NULL, "token" VARCHAR(255) NOT NULL, "last4" VARCHAR(4) NOT NULL, '
    '"expiry" VARCHAR(7) NOT NULL, "created_at" DATETIME NOT NULL, FOREIGN KEY ("client_id") '
    'REFERENCES "client" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "totp_backup_code" ("id" INTEGER NOT NULL PRIMARY KEY, "client_id" INTEGER NOT '
    'NULL, "code_hash" VARCHAR(255) NOT NULL, "used_at" DATETIME, FOREIGN KEY ("client_id") '
    'REFERENCES "client" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "product" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(150) NOT NULL, '
    '"description" TEXT NOT NULL)',
    'CREATE TABLE "service" ("id" INTEGER NOT NULL PRIMARY KEY, "client_id" INTEGER NOT NULL, '
    '"product_id" INTEGER NOT NULL, "domain" VARCHAR(253) NOT NULL, "status" VARCHAR(16) NOT '
    'NULL, "billing_cycle" VARCHAR(16) NOT NULL, "amount" INTEGER NOT NULL, "next_due_date" DATE, '
    '"payment_method" VARCHAR(32) NOT NULL, "created_at" DATETIME NOT NULL, FOREIGN KEY '
    '("client_id") REFERENCES "client" ("id") ON DELETE CASCADE, FOREIGN KEY ("product_id") '
    'REFERENCES "product" ("id") ON DELETE RESTRICT)',
    'CREATE TABLE "addon" ("id" INTEGER NOT NULL PRIMARY KEY, "service_id" INTEGER NOT NULL, '
    '"client_id" INTEGER NOT NULL, "name" VARCHAR(150) NOT NULL, "status" VARCHAR(16) NOT NULL, '
    '"billing_cycle" VARCHAR(16) NOT NULL, "amount" INTEGER NOT NULL, "next_due_date" DATE, '
    '"payment_method" VARCHAR(32) NOT NULL, "created_at" DATETIME NOT NULL, FOREIGN KEY '
    '("service_id") REFERENCES "service" ("id") ON DELETE CASCADE, FOREIGN KEY ("client_id") '
    'REFERENCES "client" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "domain" ("id" INTEGER NOT NULL PRIMARY KEY, "client_id" INTEGER NOT NULL, '
    '"name" VARCHAR(253) NOT NULL, "status" VARCHAR(24) NOT NULL, "amount" INTEGER NOT NULL, '
    '"next_due_date" DATE, "payment_method" VARCHAR(32) NOT NULL, "created_at" DATETIME NOT NULL, '
    'FOREIGN KEY ("client_id") REFERENCES "client" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "invoice" ("id" INTEGER NOT NULL PRIMARY KEY, "client_id" INTEGER NOT NULL, '
    '"number" VARCHAR(32) NOT NULL, "date" DATE NOT NULL, "due_date" DATE NOT NULL, "date_paid" '
    'DATE, "status" VARCHAR(16) NOT NULL, "payment_method" VARCHAR(32) NOT NULL, "subtotal" '
    'INTEGER NOT NULL, "tax" INTEGER NOT NULL, "tax2" INTEGER NOT NULL, "total" INTEGER NOT NULL, '
    '"tax_rate1_e4" INTEGER NOT NULL, "tax_rate2_e4" INTEGER NOT NULL, "notes" TEXT NOT NULL, '
    '"created_at" DATETIME NOT NULL, "version" INTEGER NOT NULL, FOREIGN KEY ("client_id") '
    'REFERENCES "client" ("id") ON DELETE RESTRICT)',
    'CREATE TABLE "invoice_item" ("id" INTEGER NOT NULL PRIMARY KEY, "invoice_id" INTEGER NOT '
    'NULL, "type" VARCHAR(16) NOT NULL, "description" TEXT NOT NULL, "amount" INTEGER NOT NULL, '
    '"taxed" INTEGER NOT NULL, "related_type" VARCHAR(16), "related_id" INTEGER, '
    '"related_due_date" DATE, "sort_order" INTEGER NOT NULL, FOREIGN KEY ("invoice_id") '
    'REFERENCES "invoice" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "transaction" ("id" INTEGER NOT NULL PRIMARY KEY, "client_id" INTEGER NOT NULL, '
    '"invoice_id" INTEGER, "gateway" VARCHAR(32) NOT NULL, "transaction_id" VARCHAR(128) NOT '
    'NULL, "idempotency_key" VARCHAR(128), "amount_in" INTEGER NOT NULL, "amount_out" INTEGER NOT '
    'NULL, "fees" INTEGER NOT NULL, "description" TEXT NOT NULL, "date" DATETIME NOT NULL, '
    'FOREIGN KEY ("client_id") REFERENCES "client" ("id") ON DELETE RESTRICT, FOREIGN KEY '
    '("invoice_id") REFERENCES "invoice" ("id") ON DELETE SET NULL)',
    'CREATE TABLE "email_template" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(100) NOT '
    'NULL, "subject" VARCHAR(255) NOT NULL, "body_text" TEXT NOT NULL, "body_html" TEXT NOT NULL, '
    '"sensitive" INTEGER NOT NULL, "disabled" INTEGER NOT NULL, "updated_at" DATETIME NOT NULL)',
    'CREATE TABLE "email" ("id" INTEGER NOT NULL PRIMARY KEY, "client_id" INTEGER, "template" '
    'VARCHAR(100) NOT NULL, "to" VARCHAR(254) NOT NULL, "subject" VARCHAR(255) NOT NULL, '
    '"body_text" TEXT NOT NULL, "body_html" TEXT NOT NULL, "masked_body" TEXT NOT NULL, "status" '
    'VARCHAR(16) NOT NULL, "unique_key" VARCHAR(200), "marketing" INTEGER NOT NULL, "message_id" '
    'VARCHAR(255) NOT NULL, "attempts" INTEGER NOT NULL, "next_attempt_at" DATETIME NOT NULL, '
    '"lease_owner" VARCHAR(64) NOT NULL, "lease_until" DATETIME, "last_error" TEXT NOT NULL, '
    '"created_at" DATETIME NOT NULL, "sent_at" DATETIME, FOREIGN KEY ("client_id") REFERENCES '
    '"client" ("id") ON DELETE SET NULL)',
    'CREATE TABLE "staff" ("id" INTEGER NOT NULL PRIMARY KEY, "username" VARCHAR(64) NOT NULL, '
    '"password_hash" VARCHAR(255) NOT NULL, "role" VARCHAR(16) NOT NULL, "disabled" INTEGER NOT '
    'NULL, "created_at" DATETIME NOT NULL, "last_login_at" DATETIME)',
    'CREATE TABLE "password_reset_token" ("id" INTEGER NOT NULL PRIMARY KEY, "client_id" INTEGER '
    'NOT NULL, "token_hash" VARCHAR(64) NOT NULL, "created_at" DATETIME NOT NULL, "expires_at" '
    'DATETIME NOT NULL, "used_at" DATETIME, FOREIGN KEY ("client_id") REFERENCES "client" ("id") '
    "ON DELETE CASCADE)",
    'CREATE TABLE "audit_log" ("id" INTEGER NOT NULL PRIMARY KEY, "at" DATETIME NOT NULL, '
    '"actor_type" VARCHAR(16) NOT NULL, "actor_id" INTEGER, "actor_name" VARCHAR(254) NOT NULL, '
    '"source" VARCHAR(16) NOT NULL, "client_id" INTEGER, "entity" VARCHAR(32) NOT NULL, '
    '"entity_id" INTEGER, "action" VARCHAR(64) NOT NULL, "field" VARCHAR(64) NOT NULL, '
    '"old_value" TEXT NOT NULL, "new_value" TEXT NOT NULL, FOREIGN KEY ("client_id") REFERENCES '
    '"client" ("id") ON DELETE SET NULL)',
    'CREATE TABLE "cron_run" ("id" INTEGER NOT NULL PRIMARY KEY, "business_date" DATE NOT NULL, '
    '"started_at" DATETIME NOT NULL, "finished_at" DATETIME, "outcome" VARCHAR(16) NOT NULL, '
    '"dry_run" INTEGER NOT NULL, "counts" TEXT NOT NULL, "pid" INTEGER NOT NULL)',
    'CREATE TABLE "action_ledger" ("id" INTEGER NOT NULL PRIMARY KEY, "rule" VARCHAR(32) NOT '
    'NULL, "subject" VARCHAR(64) NOT NULL, "stage" VARCHAR(32) NOT NULL, "business_date" DATE NOT '
    'NULL, "run_id" INTEGER, "outcome" VARCHAR(16) NOT NULL, "detail" TEXT NOT NULL, "created_at" '
    'DATETIME NOT NULL, FOREIGN KEY ("run_id") REFERENCES "cron_run" ("id") ON DELETE SET NULL)',
    'CREATE UNIQUE INDEX "currency_code" ON "currency" ("code")',
    'CREATE UNIQUE INDEX "client_group_name" ON "client_group" ("name")',
    'CREATE UNIQUE INDEX "tax_rule_level_country_state" ON "tax_rule" ("level", "country", '
    '"state")',
    'CREATE UNIQUE INDEX "custom_field_name" ON "custom_field" ("name")',
    'CREATE UNIQUE INDEX "security_question_question" ON "security_question" ("question")',
    'CREATE INDEX "client_currency_id" ON "client" ("currency_id")',
    'CREATE INDEX "client_group_id" ON "client" ("group_id")',
    'CREATE INDEX "client_security_question_id" ON "client" ("security_question_id")',
    'CREATE INDEX "client_billing_contact_id" ON "client" ("billing_contact_id")',
    'CREATE INDEX "client_last_name_first_name" ON "client" ("last_name", "first_name")',
    'CREATE INDEX "client_status_group_id" ON "client" ("status", "group_id")',
    'CREATE INDEX "client_created_at" ON "client" ("created_at")',
    'CREATE INDEX "client_last_login_at" ON "client" ("last_login_at")',
    'CREATE UNIQUE INDEX "client_email_lower" ON "client" (LOWER("email"))',
    'CREATE INDEX "contact_client_id" ON "contact" ("client_id")',
    'CREATE UNIQUE INDEX "contact_client_email" ON "contact" ("client_id", LOWER("email"))',
    'CREATE INDEX "custom_field_value_client_id" ON "custom_field_value" ("client_id")',
    'CREATE INDEX "custom_field_value_field_id" ON "custom_field_value" ("field_id")',
    'CREATE UNIQUE INDEX "custom_field_value_client_id_field_id" ON "custom_field_value" '
    '("client_id", "field_id")',
    'CREATE INDEX "stored_card_client_id" ON "stored_card" ("client_id")',
    'CREATE INDEX "totp_backup_code_client_id" ON "totp_backup_code" ("client_id")',
    'CREATE UNIQUE INDEX "product_name" ON "product" ("name")',
    'CREATE INDEX "service_client_id" ON "service" ("client_id")',
    'CREATE INDEX "service_product_id" ON "service" ("product_id")',
    'CREATE INDEX "service_status_next_due_date" ON "service" ("status", "next_due_date")',
    'CREATE INDEX "service_client_id_payment_method" ON "service" ("client_id", "payment_method")',
    'CREATE INDEX "addon_service_id" ON "addon" ("service_id")',
    'CREATE INDEX "addon_client_id" ON "addon" ("client_id")',
    'CREATE INDEX "addon_status_next_due_date" ON "addon" ("status", "next_due_date")',
    'CREATE INDEX "addon_client_id_payment_method" ON "addon" ("client_id", "payment_method")',
    'CREATE INDEX "domain_client_id" ON "domain" ("client_id")',
    'CREATE INDEX "domain_status_next_due_date" ON "domain" ("status", "next_due_date")',
    'CREATE INDEX "domain_client_id_payment_method" ON "domain" ("client_id", "payment_method")',
    'CREATE INDEX "domain_name" ON "domain" ("name")',
    'CREATE INDEX "invoice_client_id" ON "invoice" ("client_id")',
    'CREATE UNIQUE INDEX "invoice_number" ON "invoice" ("number")',
    'CREATE INDEX "invoice_status_due_date" ON "invoice" ("status", "due_date")',
    'CREATE INDEX "invoice_client_id_status" ON "invoice" ("client_id", "status")',
    'CREATE INDEX "invoice_client_id_payment_method" ON "invoice" ("client_id", "payment_method")',
    'CREATE INDEX "invoice_item_invoice_id" ON "invoice_item" ("invoice_id")',
    'CREATE UNIQUE INDEX "invoice_item_related_type_related_id_related_due_date" ON '
    '"invoice_item" ("related_type", "related_id", "related_due_date")',
    'CREATE INDEX "transaction_client_id" ON "transaction" ("client_id")',
    'CREATE INDEX "transaction_invoice_id" ON "transaction" ("invoice_id")',
    'CREATE UNIQUE INDEX "transaction_idempotency_key" ON "transaction" ("idempotency_key")',
    'CREATE UNIQUE INDEX "email_template_name" ON "email_template" ("name")',
    'CREATE INDEX "email_client_id" ON "email" ("client_id")',
    'CREATE UNIQUE INDEX "email_unique_key" ON "email" ("unique_key")',
    'CREATE INDEX "email_status_next_attempt_at" ON "email" ("status", "next_attempt_at")',
    'CREATE INDEX "email_client_id_created_at" ON "email" ("client_id", "created_at")',
    'CREATE INDEX "email_created_at" ON "email" ("created_at")',
    'CREATE UNIQUE INDEX "staff_username" ON "staff" ("username")',
    'CREATE INDEX "password_reset_token_client_id" ON "password_reset_token" ("client_id")',
    'CREATE UNIQUE INDEX "password_reset_token_token_hash" ON "password_reset_token" '
    '("token_hash")',
    'CREATE INDEX "password_reset_token_client_id_created_at" ON "password_reset_token" '
    '("client_id", "created_at")',
    'CREATE INDEX "audit_log_client_id" ON "audit_log" ("client_id")',
    'CREATE INDEX "audit_log_client_id_at" ON "audit_log" ("client_id", "at")',
    'CREATE INDEX "audit_log_at" ON "audit_log" ("at")',
    'CREATE INDEX "cron_run_started_at" ON "cron_run" ("started_at")',
    'CREATE INDEX "action_ledger_run_id" ON "action_ledger" ("run_id")',
    'CREATE UNIQUE INDEX "action_ledger_rule_subject_stage_business_date" ON "action_ledger" '
    '("rule", "subject", "stage", "business_date")',
    'CREATE INDEX "action_ledger_subject" ON "action_ledger" ("subject")',
]

POSTGRES = [
    'CREATE TABLE "setting" ("key" VARCHAR(64) NOT NULL PRIMARY KEY, "value" TEXT NOT NULL)',
    'CREATE TABLE "currency" ("id" SERIAL NOT NULL PRIMARY KEY, "code" VARCHAR(3) NOT NULL, '
    '"prefix" VARCHAR(8) NOT NULL, "suffix" VARCHAR(8) NOT NULL, "decimals" INTEGER NOT NULL, '
    '"rate" VARCHAR(32) NOT NULL, "is_default" BOOLEAN NOT NULL)',
    'CREATE TABLE "client_group" ("id" SERIAL NOT NULL PRIMARY KEY, "name" VARCHAR(100) NOT NULL, '
    '"colour" VARCHAR(16) NOT NULL, "discount_bp" INTEGER NOT NULL, "separate_invoices" BOOLEAN '
    "NOT NULL)",
    'CREATE TABLE "tax_rule" ("id" SERIAL NOT NULL PRIMARY KEY, "level" INTEGER NOT NULL, "name" '
    'VARCHAR(100) NOT NULL, "country" VARCHAR(2) NOT NULL, "state" VARCHAR(100) NOT NULL, '
    '"rate_e4" INTEGER NOT NULL)',
    'CREATE TABLE "custom_field" ("id" SERIAL NOT NULL PRIMARY KEY, "name" VARCHAR(100) NOT NULL, '
    '"type" VARCHAR(16) NOT NULL, "options" TEXT NOT NULL, "required" BOOLEAN NOT NULL, '
    '"admin_only" BOOLEAN NOT NULL, "regex" VARCHAR(500) NOT NULL, "sort_order" INTEGER NOT NULL)',
    'CREATE TABLE "security_question" ("id" SERIAL NOT NULL PRIMARY KEY, "question" VARCHAR(255) '
    "NOT NULL)",
    'CREATE TABLE "client" ("id" SERIAL NOT NULL PRIMARY KEY, "first_name" VARCHAR(100) NOT NULL, '
    '"last_name" VARCHAR(100) NOT NULL, "company" VARCHAR(150) NOT NULL, "email" VARCHAR(254) NOT '
    'NULL, "address1" VARCHAR(150) NOT NULL, "address2" VARCHAR(150) NOT NULL, "city" '
    'VARCHAR(100) NOT NULL, "state" VARCHAR(100) NOT NULL, "postcode" VARCHAR(20) NOT NULL, '
    '"country" VARCHAR(2) NOT NULL, "phone" VARCHAR(20) NOT NULL, "tax_id" VARCHAR(50) NOT NULL, '
    '"language" VARCHAR(35) NOT NULL, "status" VARCHAR(16) NOT NULL, "currency_id" INTEGER NOT '
    'NULL, "group_id" INTEGER, "payment_method" VARCHAR(32) NOT NULL, "late_fees_exempt" BOOLEAN '
    'NOT NULL, "overdue_notices_disabled" BOOLEAN NOT NULL, "tax_exempt" BOOLEAN NOT NULL, '
    '"separate_invoices" BOOLEAN NOT NULL, "cc_processing_disabled" BOOLEAN NOT NULL, '
    '"status_locked" BOOLEAN NOT NULL, "marketing_opt_out" BOOLEAN NOT NULL, "admin_notes" TEXT '
    'NOT NULL, "password_hash" VARCHAR(255) NOT NULL, "password_must_change" BOOLEAN NOT NULL, '
    '"security_question_id" INTEGER, "security_answer_hash" VARCHAR(255) NOT NULL, "totp_secret" '
    'VARCHAR(64) NOT NULL, "totp_last_step" INTEGER NOT NULL, "created_at" TIMESTAMP NOT NULL, '
    '"updated_at" TIMESTAMP NOT NULL, "last_login_at" TIMESTAMP, "last_login_ip" VARCHAR(45) NOT '
    'NULL, "version" INTEGER NOT NULL, "billing_contact_id" INTEGER, FOREIGN KEY ("currency_id") '
    'REFERENCES "currency" ("id") ON DELETE RESTRICT, FOREIGN KEY ("group_id") REFERENCES '
    '"client_group" ("id") ON DELETE SET NULL, FOREIGN KEY ("security_question_id") REFERENCES '
    '"security_question" ("id") ON DELETE SET NULL)',
    'CREATE TABLE "contact" ("id" SERIAL NOT NULL PRIMARY KEY, "client_id" INTEGER NOT NULL, '
    '"first_name" VARCHAR(100) NOT NULL, "last_name" VARCHAR(100) NOT NULL, "company" '
    'VARCHAR(150) NOT NULL, "email" VARCHAR(254) NOT NULL, "address1" VARCHAR(150) NOT NULL, '
    '"address2" VARCHAR(150) NOT NULL, "city" VARCHAR(100) NOT NULL, "state" VARCHAR(100) NOT '
    'NULL, "postcode" VARCHAR(20) NOT NULL, "country" VARCHAR(2) NOT NULL, "phone" VARCHAR(20) '
    'NOT NULL, FOREIGN KEY ("client_id") REFERENCES "client" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "custom_field_value" ("id" SERIAL NOT NULL PRIMARY KEY, "client_id" INTEGER NOT '
    'NULL, "field_id" INTEGER NOT NULL, "value" TEXT NOT NULL, FOREIGN KEY ("client_id") '
    'REFERENCES "client" ("id") ON DELETE CASCADE, FOREIGN KEY ("field_id") REFERENCES '
    '"custom_field" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "stored_card" ("id" SERIAL NOT NULL PRIMARY KEY, "client_id" INTEGER NOT NULL, '
    '"gateway" VARCHAR(32) NOT NULL, "token" VARCHAR(255) NOT NULL, "last4" VARCHAR(4) NOT NULL, '
    '"expiry" VARCHAR(7) NOT NULL, "created_at" TIMESTAMP NOT NULL, FOREIGN KEY ("client_id") '
    'REFERENCES "client" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "totp_backup_code" ("id" SERIAL NOT NULL PRIMARY KEY, "client_id" INTEGER NOT '
    'NULL, "code_hash" VARCHAR(255) NOT NULL, "used_at" TIMESTAMP, FOREIGN KEY ("client_id") '
    'REFERENCES "client" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "product" ("id" SERIAL NOT NULL PRIMARY KEY, "name" VARCHAR(150) NOT NULL, '
    '"description" TEXT NOT NULL)',
    'CREATE TABLE "service" ("id" SERIAL NOT NULL PRIMARY KEY, "client_id" INTEGER NOT NULL, '
    '"product_id" INTEGER NOT NULL, "domain" VARCHAR(253) NOT NULL, "status" VARCHAR(16) NOT '
    'NULL, "billing_cycle" VARCHAR(16) NOT NULL, "amount" BIGINT NOT NULL, "next_due_date" DATE, '
    '"payment_method" VARCHAR(32) NOT NULL, "created_at" TIMESTAMP NOT NULL, FOREIGN KEY '
    '("client_id") REFERENCES "client" ("id") ON DELETE CASCADE, FOREIGN KEY ("product_id") '
    'REFERENCES "product" ("id") ON DELETE RESTRICT)',
    'CREATE TABLE "addon" ("id" SERIAL NOT NULL PRIMARY KEY, "service_id" INTEGER NOT NULL, '
    '"client_id" INTEGER NOT NULL, "name" VARCHAR(150) NOT NULL, "status" VARCHAR(16) NOT NULL, '
    '"billing_cycle" VARCHAR(16) NOT NULL, "amount" BIGINT NOT NULL, "next_due_date" DATE, '
    '"payment_method" VARCHAR(32) NOT NULL, "created_at" TIMESTAMP NOT NULL, FOREIGN KEY '
    '("service_id") REFERENCES "service" ("id") ON DELETE CASCADE, FOREIGN KEY ("client_id") '
    'REFERENCES "client" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "domain" ("id" SERIAL NOT NULL PRIMARY KEY, "client_id" INTEGER NOT NULL, '
    '"name" VARCHAR(253) NOT NULL, "status" VARCHAR(24) NOT NULL, "amount" BIGINT NOT NULL, '
    '"next_due_date" DATE, "payment_method" VARCHAR(32) NOT NULL, "created_at" TIMESTAMP NOT '
    'NULL, FOREIGN KEY ("client_id") REFERENCES "client" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "invoice" ("id" SERIAL NOT NULL PRIMARY KEY, "client_id" INTEGER NOT NULL, '
    '"number" VARCHAR(32) NOT NULL, "date" DATE NOT NULL, "due_date" DATE NOT NULL, "date_paid" '
    'DATE, "status" VARCHAR(16) NOT NULL, "payment_method" VARCHAR(32) NOT NULL, "subtotal" '
    'BIGINT NOT NULL, "tax" BIGINT NOT NULL, "tax2" BIGINT NOT NULL, "total" BIGINT NOT NULL, '
    '"tax_rate1_e4" INTEGER NOT NULL, "tax_rate2_e4" INTEGER NOT NULL, "notes" TEXT NOT NULL, '
    '"created_at" TIMESTAMP NOT NULL, "version" INTEGER NOT NULL, FOREIGN KEY ("client_id") '
    'REFERENCES "client" ("id") ON DELETE RESTRICT)',
    'CREATE TABLE "invoice_item" ("id" SERIAL NOT NULL PRIMARY KEY, "invoice_id" INTEGER NOT '
    'NULL, "type" VARCHAR(16) NOT NULL, "description" TEXT NOT NULL, "amount" BIGINT NOT NULL, '
    '"taxed" BOOLEAN NOT NULL, "related_type" VARCHAR(16), "related_id" INTEGER, '
    '"related_due_date" DATE, "sort_order" INTEGER NOT NULL, FOREIGN KEY ("invoice_id") '
    'REFERENCES "invoice" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "transaction" ("id" SERIAL NOT NULL PRIMARY KEY, "client_id" INTEGER NOT NULL, '
    '"invoice_id" INTEGER, "gateway" VARCHAR(32) NOT NULL, "transaction_id" VARCHAR(128) NOT '
    'NULL, "idempotency_key" VARCHAR(128), "amount_in" BIGINT NOT NULL, "amount_out" BIGINT NOT '
    'NULL, "fees" BIGINT NOT NULL, "description" TEXT NOT NULL, "date" TIMESTAMP NOT NULL, '
    'FOREIGN KEY ("client_id") REFERENCES "client" ("id") ON DELETE RESTRICT, FOREIGN KEY '
    '("invoice_id") REFERENCES "invoice" ("id") ON DELETE SET NULL)',
    'CREATE TABLE "email_template" ("id" SERIAL NOT NULL PRIMARY KEY, "name" VARCHAR(100) NOT '
    'NULL, "subject" VARCHAR(255) NOT NULL, "body_text" TEXT NOT NULL, "body_html" TEXT NOT NULL, '
    '"sensitive" BOOLEAN NOT NULL, "disabled" BOOLEAN NOT NULL, "updated_at" TIMESTAMP NOT NULL)',
    'CREATE TABLE "email" ("id" SERIAL NOT NULL PRIMARY KEY, "client_id" INTEGER, "template" '
    'VARCHAR(100) NOT NULL, "to" VARCHAR(254) NOT NULL, "subject" VARCHAR(255) NOT NULL, '
    '"body_text" TEXT NOT NULL, "body_html" TEXT NOT NULL, "masked_body" TEXT NOT NULL, "status" '
    'VARCHAR(16) NOT NULL, "unique_key" VARCHAR(200), "marketing" BOOLEAN NOT NULL, "message_id" '
    'VARCHAR(255) NOT NULL, "attempts" INTEGER NOT NULL, "next_attempt_at" TIMESTAMP NOT NULL, '
    '"lease_owner" VARCHAR(64) NOT NULL, "lease_until" TIMESTAMP, "last_error" TEXT NOT NULL, '
    '"created_at" TIMESTAMP NOT NULL, "sent_at" TIMESTAMP, FOREIGN KEY ("client_id") REFERENCES '
    '"client" ("id") ON DELETE SET NULL)',
    'CREATE TABLE "staff" ("id" SERIAL NOT NULL PRIMARY KEY, "username" VARCHAR(64) NOT NULL, '
    '"password_hash" VARCHAR(255) NOT NULL, "role" VARCHAR(16) NOT NULL, "disabled" BOOLEAN NOT '
    'NULL, "created_at" TIMESTAMP NOT NULL, "last_login_at" TIMESTAMP)',
    'CREATE TABLE "password_reset_token" ("id" SERIAL NOT NULL PRIMARY KEY, "client_id" INTEGER '
    'NOT NULL, "token_hash" VARCHAR(64) NOT NULL, "created_at" TIMESTAMP NOT NULL, "expires_at" '
    'TIMESTAMP NOT NULL, "used_at" TIMESTAMP, FOREIGN KEY ("client_id") REFERENCES "client" '
    '("id") ON DELETE CASCADE)',
    'CREATE TABLE "audit_log" ("id" SERIAL NOT NULL PRIMARY KEY, "at" TIMESTAMP NOT NULL, '
    '"actor_type" VARCHAR(16) NOT NULL, "actor_id" INTEGER, "actor_name" VARCHAR(254) NOT NULL, '
    '"source" VARCHAR(16) NOT NULL, "client_id" INTEGER, "entity" VARCHAR(32) NOT NULL, '
    '"entity_id" INTEGER, "action" VARCHAR(64) NOT NULL, "field" VARCHAR(64) NOT NULL, '
    '"old_value" TEXT NOT NULL, "new_value" TEXT NOT NULL, FOREIGN KEY ("client_id") REFERENCES '
    '"client" ("id") ON DELETE SET NULL)',
    'CREATE TABLE "cron_run" ("id" SERIAL NOT NULL PRIMARY KEY, "business_date" DATE NOT NULL, '
    '"started_at" TIMESTAMP NOT NULL, "finished_at" TIMESTAMP, "outcome" VARCHAR(16) NOT NULL, '
    '"dry_run" INTEGER NOT NULL, "counts" TEXT NOT NULL, "pid" INTEGER NOT NULL)',
    'CREATE TABLE "action_ledger" ("id" SERIAL NOT NULL PRIMARY KEY, "rule" VARCHAR(32) NOT NULL, '
    '"subject" VARCHAR(64) NOT NULL, "stage" VARCHAR(32) NOT NULL, "business_date" DATE NOT NULL, '
    '"run_id" INTEGER, "outcome" VARCHAR(16) NOT NULL, "detail" TEXT NOT NULL, "created_at" '
    'TIMESTAMP NOT NULL, FOREIGN KEY ("run_id") REFERENCES "cron_run" ("id") ON DELETE SET NULL)',
    'CREATE UNIQUE INDEX "currency_code" ON "currency" ("code")',
    'CREATE UNIQUE INDEX "client_group_name" ON "client_group" ("name")',
    'CREATE UNIQUE INDEX "tax_rule_level_country_state" ON "tax_rule" ("level", "country", '
    '"state")',
    'CREATE UNIQUE INDEX "custom_field_name" ON "custom_field" ("name")',
    'CREATE UNIQUE INDEX "security_question_question" ON "security_question" ("question")',
    'CREATE INDEX "client_currency_id" ON "client" ("currency_id")',
    'CREATE INDEX "client_group_id" ON "client" ("group_id")',
    'CREATE INDEX "client_security_question_id" ON "client" ("security_question_id")',
    'CREATE INDEX "client_billing_contact_id" ON "client" ("billing_contact_id")',
    'CREATE INDEX "client_last_name_first_name" ON "client" ("last_name", "first_name")',
    'CREATE INDEX "client_status_group_id" ON "client" ("status", "group_id")',
    'CREATE INDEX "client_created_at" ON "client" ("created_at")',
    'CREATE INDEX "client_last_login_at" ON "client" ("last_login_at")',
    'CREATE UNIQUE INDEX "client_email_lower" ON "client" (LOWER("email"))',
    'CREATE INDEX "contact_client_id" ON "contact" ("client_id")',
    'CREATE UNIQUE INDEX "contact_client_email" ON "contact" ("client_id", LOWER("email"))',
    'CREATE INDEX "custom_field_value_client_id" ON "custom_field_value" ("client_id")',
    'CREATE INDEX "custom_field_value_field_id" ON "custom_field_value" ("field_id")',
    'CREATE UNIQUE INDEX "custom_field_value_client_id_field_id" ON "custom_field_value" '
    '("client_id", "field_id")',
    'CREATE INDEX "stored_card_client_id" ON "stored_card" ("client_id")',
    'CREATE INDEX "totp_backup_code_client_id" ON "totp_backup_code" ("client_id")',
    'CREATE UNIQUE INDEX "product_name" ON "product" ("name")',
    'CREATE INDEX "service_client_id" ON "service" ("client_id")',
    'CREATE INDEX "service_product_id" ON "service" ("product_id")',
    'CREATE INDEX "service_status_next_due_date" ON "service" ("status", "next_due_date")',
    'CREATE INDEX "service_client_id_payment_method" ON "service" ("client_id", "payment_method")',
    'CREATE INDEX "addon_service_id" ON "addon" ("service_id")',
    'CREATE INDEX "addon_client_id" ON "addon" ("client_id")',
    'CREATE INDEX "addon_status_next_due_date" ON "addon" ("status", "next_due_date")',
    'CREATE INDEX "addon_client_id_payment_method" ON "addon" ("client_id", "payment_method")',
    'CREATE INDEX "domain_client_id" ON "domain" ("client_id")',
    'CREATE INDEX "domain_status_next_due_date" ON "domain" ("status", "next_due_date")',
    'CREATE INDEX "domain_client_id_payment_method" ON "domain" ("client_id", "payment_method")',
    'CREATE INDEX "domain_name" ON "domain" ("name")',
    'CREATE INDEX "invoice_client_id" ON "invoice" ("client_id")',
    'CREATE UNIQUE INDEX "invoice_number" ON "invoice" ("number")',
    'CREATE INDEX "invoice_status_due_date" ON "invoice" ("status", "due_date")',
    'CREATE INDEX "invoice_client_id_status" ON "invoice" ("client_id", "status")',
    'CREATE INDEX "invoice_client_id_payment_method" ON "invoice" ("client_id", "payment_method")',
    'CREATE INDEX "invoice_item_invoice_id" ON "invoice_item" ("invoice_id")',
    'CREATE UNIQUE INDEX "invoice_item_related_type_related_id_related_due_date" ON '
    '"invoice_item" ("related_type", "related_id", "related_due_date")',
    'CREATE INDEX "transaction_client_id" ON "transaction" ("client_id")',
    'CREATE INDEX "transaction_invoice_id" ON "transaction" ("invoice_id")',
    'CREATE UNIQUE INDEX "transaction_idempotency_key" ON "transaction" ("idempotency_key")',
    'CREATE UNIQUE INDEX "email_template_name" ON "email_template" ("name")',
    'CREATE INDEX "email_client_id" ON "email" ("client_id")',
    'CREATE UNIQUE INDEX "email_unique_key" ON "email" ("unique_key")',
    'CREATE INDEX "email_status_next_attempt_at" ON "email" ("status", "next_attempt_at")',
    'CREATE INDEX "email_client_id_created_at" ON "email" ("client_id", "created_at")',
    'CREATE INDEX "email_created_at" ON "email" ("created_at")',
    'CREATE UNIQUE INDEX "staff_username" ON "staff" ("username")',
    'CREATE INDEX "password_reset_token_client_id" ON "password_reset_token" ("client_id")',
    'CREATE UNIQUE INDEX "password_reset_token_token_hash" ON "password_reset_token" '
    '("token_hash")',
    'CREATE INDEX "password_reset_token_client_id_created_at" ON "password_reset_token" '
    '("client_id", "created_at")',
    'CREATE INDEX "audit_log_client_id" ON "audit_log" ("client_id")',
    'CREATE INDEX "audit_log_client_id_at" ON "audit_log" ("client_id", "at")',
    'CREATE INDEX "audit_log_at" ON "audit_log" ("at")',
    'CREATE INDEX "cron_run_started_at" ON "cron_run" ("started_at")',
    'CREATE INDEX "action_ledger_run_id" ON "action_ledger" ("run_id")',
    'CREATE UNIQUE INDEX "action_ledger_rule_subject_stage_business_date" ON "action_ledger" '
    '("rule", "subject", "stage", "business_date")',
    'CREATE INDEX "action_ledger_subject" ON "action_ledger" ("subject")',
    'ALTER TABLE "client" ADD CONSTRAINT "fk_client_billing_contact_id_refs_contact" FOREIGN KEY '
    '("billing_contact_id") REFERENCES "contact" ("id") ON DELETE SET NULL',
]


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    for statement in SQLITE if isinstance(db, SqliteDatabase) else POSTGRES:
        db.execute_sql(statement)
