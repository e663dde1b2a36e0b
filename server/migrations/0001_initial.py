"""Create the first schema."""
from peewee import *


def up(migrator, db):
    class GridNode(Model):
        code = CharField(unique=True, max_length=64)
        name = CharField(max_length=128)
        level = CharField(max_length=32)
        parent = ForeignKeyField('self', null=True, on_delete='RESTRICT')
        path = CharField(index=True, max_length=1024)
        depth = IntegerField()
        households = IntegerField(null=True)
        population = IntegerField(null=True)
        boundary = JSONField(null=True)
        retired_at = DateTimeField(null=True)
        created_at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'grid_node'
    db.create_tables([GridNode])

    class Adaptation(Model):
        kind = CharField(max_length=8)
        key = CharField(max_length=64)
        grid = ForeignKeyField(GridNode, on_delete='RESTRICT')
        overlay_version = IntegerField()
        effective = IntegerField(null=True)
        conflict = JSONField(null=True)
        updated_at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'adaptation'
            indexes = ((('kind', 'key', 'grid'), True),)
    db.create_tables([Adaptation])

    class Person(Model):
        username = CharField(unique=True, max_length=64)
        name = CharField(max_length=64)
        phone = CharField(unique=True, null=True, max_length=20)
        password_hash = CharField(max_length=256)
        active = BooleanField(default=True)
        session_epoch = IntegerField(default=0)
        last_login_at = DateTimeField(null=True)
        created_at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'person'
    db.create_tables([Person])

    class ApiToken(Model):
        person = ForeignKeyField(Person, on_delete='CASCADE')
        name = CharField(max_length=64, default='')
        token_hash = CharField(unique=True, max_length=64)
        prefix = CharField(max_length=16)
        created_at = DateTimeField()
        last_used_at = DateTimeField(null=True)
        revoked_at = DateTimeField(null=True)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'api_token'
    db.create_tables([ApiToken])

    class Attachment(Model):
        sha256 = CharField(max_length=64)
        uploaded_by = ForeignKeyField(Person, on_delete='RESTRICT')
        filename = CharField()
        content_type = CharField(max_length=128)
        size = IntegerField()
        width = IntegerField(null=True)
        height = IntegerField(null=True)
        thumb_sha256 = CharField(null=True, max_length=64)
        created_at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'attachment'
            indexes = ((('sha256', 'uploaded_by'), True),)
    db.create_tables([Attachment])

    class AuditEntry(Model):
        at = DateTimeField(index=True)
        actor = ForeignKeyField(Person, null=True, on_delete='SET NULL')
        action = CharField(max_length=32)
        target = CharField(max_length=128)
        detail = JSONField(null=True)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'audit_entry'
    db.create_tables([AuditEntry])

    class Form(Model):
        key = CharField(unique=True, max_length=64)
        title = CharField(max_length=128)
        created_at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'form'
    db.create_tables([Form])

    class FormVersion(Model):
        form = ForeignKeyField(Form, on_delete='CASCADE')
        version = IntegerField()
        content_hash = CharField(max_length=64)
        definition = JSONField()
        source = CharField(null=True, max_length=512)
        created_by = ForeignKeyField(Person, null=True, on_delete='SET NULL')
        created_at = DateTimeField()
        variant = CharField(max_length=512, default='')
        overlays = JSONField(null=True)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'form_version'
            indexes = ((('form', 'version', 'variant'), True),)
    db.create_tables([FormVersion])

    class Flow(Model):
        key = CharField(unique=True, max_length=64)
        title = CharField(max_length=128)
        created_at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'flow'
    db.create_tables([Flow])

    class FlowVersion(Model):
        flow = ForeignKeyField(Flow, on_delete='CASCADE')
        version = IntegerField()
        content_hash = CharField(max_length=64)
        definition = JSONField()
        source = CharField(null=True, max_length=512)
        created_by = ForeignKeyField(Person, null=True, on_delete='SET NULL')
        created_at = DateTimeField()
        variant = CharField(max_length=512, default='')
        overlays = JSONField(null=True)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'flow_version'
            indexes = ((('flow', 'version', 'variant'), True),)
    db.create_tables([FlowVersion])

    class Submission(Model):
        id = CharField(primary_key=True, max_length=36)
        form = CharField(max_length=64)
        version = IntegerField()
        form_version = ForeignKeyField(FormVersion, on_delete='RESTRICT')
        grid = ForeignKeyField(GridNode, on_delete='RESTRICT')
        grid_code = CharField(max_length=64)
        grid_path = CharField(max_length=1024)
        status = CharField(max_length=32, default='submitted')
        current_nodes = JSONField(default=list)
        data = JSONField()
        search_text = TextField(default='')
        request_hash = CharField(max_length=64)
        revision = IntegerField(default=1)
        flow_version = ForeignKeyField(FlowVersion, null=True, on_delete='RESTRICT')
        flow_state = JSONField(null=True)
        outcome = CharField(null=True, max_length=32)
        created_by = ForeignKeyField(Person, on_delete='RESTRICT')
        created_at = DateTimeField()
        updated_at = DateTimeField()
        closed_at = DateTimeField(null=True)
        late = BooleanField(default=False)
        rating = CharField(null=True, max_length=32)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'submission'
            indexes = ((('grid_path', 'created_at', 'form', 'closed_at', 'outcome', 'late', 'rating'), False), (('form', 'grid_path', 'created_at'), False), (('created_by', 'created_at'), False), (('created_at', 'id'), False), (('updated_at',), False), (('created_at', 'grid_path', 'form', 'closed_at', 'outcome', 'late', 'rating'), False))
    db.create_tables([Submission])

    class CaseFile(Model):
        submission = ForeignKeyField(Submission, on_delete='CASCADE')
        sha256 = CharField(index=True, max_length=64)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'case_file'
            indexes = ((('submission', 'sha256'), True),)
    db.create_tables([CaseFile])

    class CaseLink(Model):
        source = ForeignKeyField(Submission, on_delete='CASCADE')
        target = ForeignKeyField(Submission, on_delete='CASCADE')
        kind = CharField(max_length=32, default='spawned')
        node = CharField(null=True, max_length=64)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'case_link'
    db.create_tables([CaseLink])

    class CcEntry(Model):
        submission = ForeignKeyField(Submission, on_delete='CASCADE')
        person = ForeignKeyField(Person, on_delete='CASCADE')
        node = CharField(max_length=64)
        at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'cc_entry'
            indexes = ((('person', 'at'), False),)
    db.create_tables([CcEntry])

    class DefinitionDraft(Model):
        kind = CharField(max_length=8)
        key = CharField(max_length=64)
        scope = CharField(max_length=64, default='')
        definition = JSONField()
        base = JSONField(null=True)
        revision = IntegerField(default=1)
        tests = JSONField(default=list)
        updated_by = ForeignKeyField(Person, null=True, on_delete='SET NULL')
        updated_at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'definition_draft'
            indexes = ((('kind', 'key', 'scope'), True),)
    db.create_tables([DefinitionDraft])

    class Department(Model):
        key = CharField(primary_key=True, max_length=32)
        name = CharField(max_length=64)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'department'
    db.create_tables([Department])

    class Draft(Model):
        id = CharField(primary_key=True, max_length=36)
        person = ForeignKeyField(Person, on_delete='CASCADE')
        form = CharField(max_length=64)
        form_version = ForeignKeyField(FormVersion, on_delete='CASCADE')
        grid_code = CharField(null=True, max_length=64)
        data = JSONField()
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'draft'
            indexes = ((('person', 'updated_at'), False),)
    db.create_tables([Draft])

    class Event(Model):
        submission = ForeignKeyField(Submission, on_delete='CASCADE')
        at = DateTimeField()
        actor = ForeignKeyField(Person, null=True, on_delete='SET NULL')
        kind = CharField(max_length=32)
        node = CharField(null=True, max_length=64)
        from_status = CharField(null=True, max_length=32)
        to_status = CharField(null=True, max_length=32)
        revision = IntegerField(null=True)
        comment = TextField(null=True)
        diff = JSONField(null=True)
        payload = JSONField(null=True)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'event'
            indexes = ((('submission', 'id'), False),)
    db.create_tables([Event])

    class Level(Model):
        key = CharField(primary_key=True, max_length=32)
        name = CharField(max_length=64)
        depth = IntegerField(unique=True)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'level'
    db.create_tables([Level])

    class LoginFailure(Model):
        username = CharField(max_length=64)
        address = CharField(max_length=64)
        at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'login_failure'
            indexes = ((('username', 'at'), False), (('address', 'at'), False))
    db.create_tables([LoginFailure])

    class Membership(Model):
        person = ForeignKeyField(Person, on_delete='CASCADE')
        node = ForeignKeyField(GridNode, on_delete='RESTRICT')
        role = CharField(max_length=32)
        department = CharField(null=True, max_length=64)
        created_at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'membership'
            indexes = ((('person', 'node', 'role', 'department'), True),)
    db.create_tables([Membership])

    class Overlay(Model):
        kind = CharField(max_length=8)
        key = CharField(max_length=64)
        grid = ForeignKeyField(GridNode, on_delete='RESTRICT')
        version = IntegerField()
        patch = JSONField()
        base_version = IntegerField()
        note = CharField(max_length=256, default='')
        created_by = ForeignKeyField(Person, null=True, on_delete='SET NULL')
        created_at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'overlay'
            indexes = ((('kind', 'key', 'grid', 'version'), True),)
    db.create_tables([Overlay])

    class Role(Model):
        key = CharField(primary_key=True, max_length=32)
        name = CharField(max_length=64)
        is_admin = BooleanField(default=False)
        sees_sensitive = BooleanField(default=False)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'role'
    db.create_tables([Role])

    class StatMonth(Model):
        month = CharField(max_length=7)
        form = CharField(max_length=64)
        node = IntegerField()
        depth = IntegerField()
        reported = IntegerField(default=0)
        withdrawn = IntegerField(default=0)
        closed = IntegerField(default=0)
        on_time = IntegerField(default=0)
        handling_seconds = BigIntegerField(default=0)
        hours = JSONField(default=dict)
        rated = IntegerField(default=0)
        satisfied = IntegerField(default=0)
        resolved = IntegerField(default=0)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'stat_month'
            indexes = ((('node', 'month', 'form'), True), (('depth', 'month'), False))
    db.create_tables([StatMonth])

    class StatRefresh(Model):
        name = CharField(primary_key=True, max_length=32)
        at = DateTimeField()
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'stat_refresh'
    db.create_tables([StatRefresh])

    class Task(Model):
        submission = ForeignKeyField(Submission, on_delete='CASCADE')
        key = CharField(max_length=16)
        node = CharField(max_length=64)
        title = CharField(max_length=128)
        mode = CharField(max_length=16, default='any')
        state = CharField(max_length=16, default='open')
        form = CharField(max_length=64)
        grid_path = CharField(max_length=1024)
        item = JSONField(null=True)
        due_at = DateTimeField(null=True)
        overdue = BooleanField(default=False)
        escalations = IntegerField(default=0)
        urged_at = DateTimeField(null=True)
        opened_at = DateTimeField()
        closed_at = DateTimeField(null=True)
        closed_by = ForeignKeyField(Person, null=True, on_delete='SET NULL')
        action = CharField(null=True, max_length=64)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'task'
            indexes = ((('submission', 'key'), True), (('state', 'due_at'), False), (('node', 'state'), False))
    db.create_tables([Task])

    class TaskAssignee(Model):
        task = ForeignKeyField(Task, on_delete='CASCADE')
        person = ForeignKeyField(Person, on_delete='CASCADE')
        active = BooleanField(default=True)
        acted_at = DateTimeField(null=True)
        class Meta:
            legacy_table_names = False
            database = db
            table_name = 'task_assignee'
            indexes = ((('task', 'person'), True), (('person', 'active'), False))
    db.create_tables([TaskAssignee])
    if isinstance(db, PostgresqlDatabase):
        # Materialised paths compare byte by byte, so that `path LIKE '/a/b/%'` (a subtree) can use
        # the b-tree indexes; in a language collation PostgreSQL cannot use them for LIKE.
        for table, column in (("grid_node", "path"), ("submission", "grid_path"), ("task", "grid_path")):
            db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE VARCHAR(1024) COLLATE "C"')


def down(migrator, db):
    migrator.migrate(migrator.drop_table('task_assignee'))
    migrator.migrate(migrator.drop_table('task'))
    migrator.migrate(migrator.drop_table('stat_refresh'))
    migrator.migrate(migrator.drop_table('stat_month'))
    migrator.migrate(migrator.drop_table('role'))
    migrator.migrate(migrator.drop_table('overlay'))
    migrator.migrate(migrator.drop_table('membership'))
    migrator.migrate(migrator.drop_table('login_failure'))
    migrator.migrate(migrator.drop_table('level'))
    migrator.migrate(migrator.drop_table('event'))
    migrator.migrate(migrator.drop_table('draft'))
    migrator.migrate(migrator.drop_table('department'))
    migrator.migrate(migrator.drop_table('definition_draft'))
    migrator.migrate(migrator.drop_table('cc_entry'))
    migrator.migrate(migrator.drop_table('case_link'))
    migrator.migrate(migrator.drop_table('case_file'))
    migrator.migrate(migrator.drop_table('submission'))
    migrator.migrate(migrator.drop_table('flow_version'))
    migrator.migrate(migrator.drop_table('flow'))
    migrator.migrate(migrator.drop_table('form_version'))
    migrator.migrate(migrator.drop_table('form'))
    migrator.migrate(migrator.drop_table('audit_entry'))
    migrator.migrate(migrator.drop_table('attachment'))
    migrator.migrate(migrator.drop_table('api_token'))
    migrator.migrate(migrator.drop_table('person'))
    migrator.migrate(migrator.drop_table('adaptation'))
    migrator.migrate(migrator.drop_table('grid_node'))
