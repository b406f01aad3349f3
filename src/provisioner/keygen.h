/*
 * keygen.h - private: the login key a provisioner makes when the user gave
 * none (VMs, Testing Farm): ed25519, no passphrase, made by ssh-keygen.
 */
#ifndef ATEX_PROVISIONER_KEYGEN_H
#define ATEX_PROVISIONER_KEYGEN_H

/* Makes `path` and `path`.pub with `comment`, unless `path` exists.
 * `who` names the provisioner in the error. Returns 0, ATEX_EEXTERNAL
 * (ssh-keygen failed; its stderr quoted), ATEX_EIO or ATEX_ENOMEM. */
int atex_provisioner_keygen(const char *path, const char *comment,
			    const char *who);

#endif /* ATEX_PROVISIONER_KEYGEN_H */
