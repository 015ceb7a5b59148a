// STAND-IN, NOT APPLE'S HEADER. Declares only the Foundation names metal_backend.mm uses, so that CI can
// syntax-check the Objective-C++ host with clang on Linux (ctest metal/host_syntax). It checks our code against
// these declarations (written from Apple's documented signatures), not against the real SDK.
#pragma once
typedef unsigned long NSUInteger;
typedef signed char BOOL;
#define nil ((id)0)
#define YES ((BOOL)1)
#define NO ((BOOL)0)
@interface NSObject
+ (instancetype)new;
@end
@interface NSString : NSObject
+ (instancetype)stringWithUTF8String:(const char*)s;
@property(readonly) const char* UTF8String;
@end
@interface NSError : NSObject
@property(readonly) NSString* localizedDescription;
@end
@interface NSArray<ObjectType> : NSObject
@property(readonly) NSUInteger count;
- (ObjectType)objectAtIndexedSubscript:(NSUInteger)i;
+ (instancetype)arrayWithObjects:(const ObjectType[])objects count:(NSUInteger)cnt;
@end
