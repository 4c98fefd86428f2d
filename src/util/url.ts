/** A URL as messages show it: without the user and password it may carry (`https://u:p@h/x` → `https://h/x`). */
export function shownUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}
