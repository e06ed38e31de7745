/** GitHub's API base from what a person gives: github.com, an Enterprise web URL, or an API URL. */

/** API base for a GitHub web or API URL. */
export function githubApiUrl(url?: string): string {
  if (!url) return "https://api.github.com";
  const u = url.replace(/\/+$/, "");
  if (/^https?:\/\/(www\.)?github\.com$/i.test(u)) return "https://api.github.com";
  if (/\/api\/v3$/.test(u) || /^https?:\/\/api\.github\.com$/i.test(u)) return u;
  return `${u}/api/v3`;
}
