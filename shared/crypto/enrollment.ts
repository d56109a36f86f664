/** Enrolment tokens, at the path the coordinator imports them from; they live with the rest of the PKI. */
export { newEnrollmentToken, hashEnrollmentToken, enrollmentTokenMatches, constantTimeEqual, ENROLLMENT_TOKEN_PREFIX } from "./pki/enrollment.js";
