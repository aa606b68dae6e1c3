"""The top of the house: application assembly, the command line and the OpenAPI document. The only
package that imports all the others."""
