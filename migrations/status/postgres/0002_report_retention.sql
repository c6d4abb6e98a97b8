-- Report retention deletes by age.
CREATE INDEX status_reports_received ON status_reports (received_at);
