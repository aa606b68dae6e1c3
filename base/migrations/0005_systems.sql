-- Machine clients: a department's own approval system pushes its case events with an account of
-- role 'system', limited to that department.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('dispatcher', 'operator', 'supervisor', 'administrator', 'system'));
