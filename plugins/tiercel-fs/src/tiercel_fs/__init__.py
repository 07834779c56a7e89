"""Tiercel fs: file transfer over SFTP and FTP."""
