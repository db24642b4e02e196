// Why a page cannot be shown; plugin.ts turns each into its error page (403 or 404) with the message.

/** The signed-in person's role does not use this page (403). */
export class NotAllowedHere extends Error {}

/** There is no such thing to show (404). */
export class PageNotFound extends Error {}

/** The user's organisation is not in the record, or the user acts for none (404). */
export class NotInRecord extends Error {}
