// TEMPORARY
export class InboxTables {}
